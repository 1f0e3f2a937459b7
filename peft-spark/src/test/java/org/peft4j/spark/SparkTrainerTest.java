package org.peft4j.spark;

import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftException;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.train.DataLoader;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.PaddingCollator;
import org.peft4j.core.train.StepEvent;
import org.peft4j.core.train.Trainer;
import org.peft4j.core.train.TrainerContext;
import org.peft4j.core.train.TrainingConfig;
import org.peft4j.core.train.TrainingListener;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Data-parallel training in local[2] against the single-process {@link Trainer}: same batches,
 * same loss curve, same adapter (fp32 tolerance), and exact resume after a killed task.
 */
class SparkTrainerTest {
    /** 80 rows, global batch 16 → 5 updates per epoch, 2 epochs. */
    static final int ROWS = 80;
    static final long SEED = 11;
    /**
     * fp32 tolerances: the two tasks' gradients are summed in a different order than one
     * backward over 16 rows, and each shard is padded to its own longest row, so values differ
     * by rounding (~1e-7 relative per step); AdamW's normalisation keeps that at that size.
     */
    static final double LOSS_TOL = 1e-5;
    static final double WEIGHT_TOL = 1e-5;

    static SparkSession spark;

    @BeforeAll
    static void start() {
        spark = SparkTestSupport.session("local[2]");
    }

    @AfterAll
    static void stop() {
        if (spark != null) {
            spark.stop();
        }
        TrainTask.hook = null;
        Replicas.clear();
    }

    static String training(String extra) {
        return "{\"epochs\":2,\"batch_size\":16,\"learning_rate\":0.01,\"warmup_steps\":2,\"schedule\":\"linear\","
                + "\"max_grad_norm\":1.0,\"weight_decay\":0.01,\"seed\":" + SEED + extra + "}";
    }

    static final String LORA = "{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":8,\"lora_dropout\":0.0,"
            + "\"target_modules\":[\"query\",\"value\"],\"modules_to_save\":[\"classifier\"]}";

    static SparkTrainSpec spec(int tasks, String trainingJson, String checkpointDir, int syncEvery, int restarts, String exchange) {
        ModelSource src = ModelSources.classifier(SparkTestSupport.tinyBert().toString(), SparkTestSupport.LABELS, "mean",
                false, 0.0, SEED);
        return new SparkTrainSpec(src, LORA, trainingJson, "input_ids", "label", SparkTestSupport.LABELS, 32, tasks,
                checkpointDir, syncEvery, 0, restarts, exchange);
    }

    /** The single-process run: the core Trainer on the same rows, model and configs. */
    static Reference singleProcess(SparkTrainSpec spec, List<int[]> ids, Path adapterDir) {
        ModelSource.Loaded base = spec.source().load();
        PeftModel pm = Peft.apply(base.model(), spec.peft());
        List<Example> ex = new ArrayList<>();
        for (int[] x : ids) {
            ex.add(new Example(x, SparkTestSupport.label(x)));
        }
        TrainingConfig cfg = spec.training();
        List<Double> losses = new ArrayList<>();
        Trainer t = Trainer.builder(pm, pm.trainableParameters(),
                        (m, b) -> Ops.crossEntropy(base.model().forward(b.inputIds(), b.attentionMask(), b.tokenTypeIds()),
                                b.labels(), Ops.Reduction.MEAN), cfg)
                .progress(false)
                .listener(new TrainingListener() {
                    @Override
                    public void onStepEnd(TrainerContext ctx, StepEvent step) {
                        losses.add(step.loss());
                    }
                }).build();
        t.fit(DataLoader.forTraining(org.peft4j.core.train.Dataset.of(ex), PaddingCollator.dynamic(0, 32, true), cfg));
        pm.save(adapterDir);
        return new Reference(losses.stream().mapToDouble(Double::doubleValue).toArray(), weights(adapterDir));
    }

    record Reference(double[] losses, Map<String, INDArray> adapter) {
    }

    static Map<String, INDArray> weights(Path adapterDir) {
        try {
            return SafeTensors.load(adapterDir.resolve(PeftModel.WEIGHTS_NAME));
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
    }

    static Map<String, INDArray> saved(SparkTrainer.Result r, Path dir) {
        r.saveAdapter(dir.toString());
        assertTrue(Files.isRegularFile(dir.resolve(PeftModel.CONFIG_NAME)), "adapter_config.json written by the driver");
        return weights(dir);
    }

    static double maxAbsDiff(Map<String, INDArray> a, Map<String, INDArray> b) {
        assertEquals(a.keySet(), b.keySet());
        double m = 0;
        for (String k : a.keySet()) {
            m = Math.max(m, a.get(k).sub(b.get(k)).amaxNumber().doubleValue());
        }
        return m;
    }

    @ParameterizedTest
    @ValueSource(strings = {SparkTrainSpec.BARRIER, SparkTrainSpec.AGGREGATE})
    void twoTasksOfEightMatchOneProcessWithBatchSixteen(String exchange, @TempDir Path tmp) {
        List<int[]> ids = SparkTestSupport.ids(ROWS, 5);
        Dataset<Row> df = SparkTestSupport.frame(spark, ids);
        SparkTrainSpec spec = spec(2, training(""), null, 1, 0, exchange);
        Reference ref = singleProcess(spec, ids, tmp.resolve("single"));
        SparkTrainer.Result r = SparkTrainer.fit(df, spec);

        assertEquals(10, r.steps());
        assertEquals(10, ref.losses().length);
        for (int i = 0; i < 10; i++) {
            assertEquals(ref.losses()[i], r.losses()[i], LOSS_TOL, "loss at step " + (i + 1));
        }
        assertTrue(r.losses()[9] < r.losses()[0], "training lowers the loss");
        Map<String, INDArray> got = saved(r, tmp.resolve("spark"));
        double d = maxAbsDiff(ref.adapter(), got);
        assertTrue(d <= WEIGHT_TOL, "max |Δ| adapter weight " + d);
        // only adapter tensors cross the network: r=4 on query/value of 2 layers (hidden 16) + classifier 16·2+2
        long loraValues = 2L * 2 * (4 * 16 + 16 * 4);
        assertEquals(loraValues + 34, r.trainableValues());
        if (exchange.equals(SparkTrainSpec.BARRIER)) {
            // Base64 of float32: 4 bytes → 16/3 characters per value (+ header); 2 messages up, 2 × 2 down
            assertTrue(r.bytesPerStepPerTask() >= r.trainableValues() * 16 / 3 && r.bytesPerStepPerTask() < r.trainableValues() * 16 / 3 + 200,
                    "bytes per step " + r.bytesPerStepPerTask());
            assertEquals(6.0 * r.bytesPerStepPerTask(), r.exchangedPerStep(), 6 * 100.0);
        } else {
            // float32 gradient up and float32 adapter down, per task
            assertEquals(4 * r.trainableValues(), r.bytesPerStepPerTask());
            assertEquals(2 * 2 * 4 * r.trainableValues(), r.exchangedPerStep());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {SparkTrainSpec.BARRIER, SparkTrainSpec.AGGREGATE})
    void aTaskKilledOnceResumesAndEndsWithTheSameAdapter(String exchange, @TempDir Path tmp) {
        List<int[]> ids = SparkTestSupport.ids(ROWS, 5);
        Dataset<Row> df = SparkTestSupport.frame(spark, ids);
        SparkTrainer.Result clean = SparkTrainer.fit(df, spec(2, training(""), null, 1, 0, exchange));

        String ck = tmp.resolve("ckpt").toUri().toString();
        AtomicBoolean killed = new AtomicBoolean();
        TrainTask.hook = (task, step, attempt) -> {
            if (task == 1 && step == 7 && killed.compareAndSet(false, true)) {
                throw new IllegalStateException("injected failure: task 1 killed before step 8");
            }
        };
        SparkTrainer.Result resumed;
        try {
            resumed = SparkTrainer.fit(df, spec(2, training(",\"checkpoint_interval\":3"), ck, 1, 2, exchange));
        } finally {
            TrainTask.hook = null;
        }
        assertTrue(killed.get());
        assertEquals(2, resumed.attempts(), "one failed attempt, then success");
        // barrier: the stage fails and the resubmitted job resumes from checkpoint-6; aggregate: the driver re-runs step 8
        assertEquals(exchange.equals(SparkTrainSpec.BARRIER) ? 6 : 0, resumed.startStep());
        assertTrue(Files.isRegularFile(tmp.resolve("ckpt/checkpoint-10/state.json")), "final checkpoint written");
        assertEquals(10, resumed.losses().length);
        for (int i = 0; i < 10; i++) {
            assertEquals(clean.losses()[i], resumed.losses()[i], 0.0, "loss at step " + (i + 1));
        }
        assertEquals(0.0, maxAbsDiff(saved(clean, tmp.resolve("a")), saved(resumed, tmp.resolve("b"))),
                "resume reproduces the uninterrupted run bit for bit");
    }

    @Test
    void withoutACheckpointDirTheFailureIsReportedClearly() {
        Dataset<Row> df = SparkTestSupport.frame(spark, SparkTestSupport.ids(32, 5));
        TrainTask.hook = (task, step, attempt) -> {
            if (task == 0 && step == 1) {
                throw new IllegalStateException("injected failure at step 2");
            }
        };
        try {
            PeftException e = assertThrows(PeftException.class,
                    () -> SparkTrainer.fit(df, spec(2, training(""), null, 1, 3, SparkTrainSpec.BARRIER)));
            assertTrue(e.getMessage().contains("no checkpoint_dir") && e.getMessage().contains("injected failure at step 2"),
                    e.getMessage());
        } finally {
            TrainTask.hook = null;
        }
    }

    @Test
    void localStepsWithAveragingKeepReplicasEqualAndLearn(@TempDir Path tmp) {
        List<int[]> ids = SparkTestSupport.ids(ROWS, 5);
        Dataset<Row> df = SparkTestSupport.frame(spark, ids);
        SparkTrainer.Result r = SparkTrainer.fit(df, spec(2, training(""), null, 2, 0, SparkTrainSpec.BARRIER));
        assertEquals(10, r.losses().length);
        assertEquals(5, r.reports().get(0).exchanges(), "one exchange per 2 local steps");
        assertTrue(r.losses()[9] < r.losses()[0], "local SGD lowers the loss too: " + r.losses()[0] + " -> " + r.losses()[9]);
        Reference ref = singleProcess(spec(2, training(""), null, 1, 0, SparkTrainSpec.BARRIER), ids, tmp.resolve("single"));
        double d = maxAbsDiff(ref.adapter(), saved(r, tmp.resolve("local")));
        assertTrue(d > WEIGHT_TOL, "local steps are a different optimisation, not the exact one (max |Δ| " + d + ")");
    }

    @Test
    void nf4BaseTrainsTheSameDistributedAsInOneProcess(@TempDir Path tmp) {
        List<int[]> ids = SparkTestSupport.ids(48, 8);
        ModelSource nf4 = ModelSources.classifier(SparkTestSupport.tinyBert().toString(), SparkTestSupport.LABELS, "mean",
                true, 0.0, SEED);
        String cfg = "{\"max_steps\":3,\"batch_size\":16,\"learning_rate\":0.01,\"seed\":" + SEED + "}";
        SparkTrainSpec spec = new SparkTrainSpec(nf4, LORA, cfg, "input_ids", "label", SparkTestSupport.LABELS, 32, 2, null, 1, 0, 0,
                SparkTrainSpec.AGGREGATE);
        Reference ref = singleProcess(spec, ids, tmp.resolve("single"));
        SparkTrainer.Result r = SparkTrainer.fit(SparkTestSupport.frame(spark, ids), spec);
        for (int i = 0; i < 3; i++) {
            assertEquals(ref.losses()[i], r.losses()[i], LOSS_TOL, "loss at step " + (i + 1));
        }
        double d = maxAbsDiff(ref.adapter(), saved(r, tmp.resolve("spark")));
        assertTrue(d <= WEIGHT_TOL, "max |Δ| adapter weight on the NF4 base " + d);
    }
}
