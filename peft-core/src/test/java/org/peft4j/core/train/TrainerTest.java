package org.peft4j.core.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainerTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private static final EvalFunction ACCURACY = Metrics.classification((m, b) -> ((TinyClassifier) m).logits(b));

    private static TinyClassifier model(long seed, double dropout) {
        return new TinyClassifier(seed, SyntheticData.VOCAB, 8, 16, SyntheticData.CLASSES, dropout);
    }

    private static DataLoader<Example> trainLoader(List<Example> xs, int batch, long seed) {
        return DataLoader.builder(Dataset.of(xs), PaddingCollator.<Example>dynamic(0))
                .batchSize(batch).shuffle(true).seed(seed).build();
    }

    private static DataLoader<Example> evalLoader(List<Example> xs) {
        return DataLoader.forEvaluation(Dataset.of(xs), PaddingCollator.dynamic(0), 32);
    }

    /** Records every update's loss. */
    private static final class LossRecorder implements TrainingListener {
        final List<Double> losses = new ArrayList<>();
        final List<Long> steps = new ArrayList<>();

        @Override
        public void onStepEnd(TrainerContext ctx, StepEvent step) {
            losses.add(step.loss());
            steps.add(step.step());
        }
    }

    private static Map<String, INDArray> snapshot(Map<String, Parameter> ps) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        ps.forEach((k, p) -> out.put(k, p.value().dup()));
        return out;
    }

    private static void assertSameValues(Map<String, INDArray> expected, Map<String, INDArray> actual, double tol) {
        assertEquals(expected.keySet(), actual.keySet());
        for (String k : expected.keySet()) {
            INDArray d = expected.get(k).castTo(actual.get(k).dataType()).sub(actual.get(k));
            double maxAbs = d.length() == 0 ? 0 : org.nd4j.linalg.ops.transforms.Transforms.abs(d).maxNumber().doubleValue();
            assertTrue(maxAbs <= tol, k + " differs by " + maxAbs);
        }
    }

    // ---- learning ------------------------------------------------------------------------

    @Test
    void adamwLearnsTheSeparableProblem() {
        List<Example> train = SyntheticData.examples(240, 1);
        List<Example> eval = SyntheticData.examples(90, 2);
        TinyClassifier m = model(11, 0.1);
        TrainingConfig cfg = TrainingConfig.builder().epochs(10).batchSize(32).learningRate(2e-2).weightDecay(0.01)
                .warmupRatio(0.1).schedule(ScheduleType.LINEAR).seed(5).logInterval(20).build();
        Trainer t = Trainer.builder(m, m.namedTrainableParameters(), TinyClassifier::loss, cfg)
                .evalFunction(ACCURACY).rng(m.dropoutRng).build();
        Map<String, Double> before = t.evaluate(evalLoader(eval));
        TrainResult r = t.fit(trainLoader(train, 32, 5), evalLoader(eval));
        assertEquals(10 * 8, r.globalStep());
        double acc = r.lastEvalMetrics().get("accuracy");
        assertTrue(acc >= 0.95, "AdamW accuracy " + acc + " should be >= 0.95");
        assertTrue(r.lastEvalMetrics().get("eval_loss") < 0.5 * before.get("eval_loss"),
                "eval loss " + before.get("eval_loss") + " -> " + r.lastEvalMetrics().get("eval_loss"));
        assertTrue(m.isTraining(), "model is back in train mode after fit");
    }

    @Test
    void sgdMomentumLearnsTheSeparableProblem() {
        List<Example> train = SyntheticData.examples(240, 3);
        List<Example> eval = SyntheticData.examples(90, 4);
        TinyClassifier m = model(12, 0.0);
        TrainingConfig cfg = TrainingConfig.builder().epochs(6).batchSize(32).optimizer(OptimizerType.SGD)
                .learningRate(0.3).sgdMomentum(0.9).schedule(ScheduleType.COSINE).warmupSteps(3).seed(6)
                .logInterval(50).build();
        Trainer t = Trainer.builder(m, m.namedTrainableParameters(), TinyClassifier::loss, cfg)
                .evalFunction(ACCURACY).progress(false).build();
        assertTrue(t.optimizer() instanceof Sgd);
        TrainResult r = t.fit(trainLoader(train, 32, 6), evalLoader(eval));
        double acc = r.lastEvalMetrics().get("accuracy");
        assertTrue(acc >= 0.95, "SGD momentum accuracy " + acc + " should be >= 0.95");
    }

    // ---- accumulation ----------------------------------------------------------------------

    @Test
    void accumulationOfTwoHalfBatchesEqualsOneFullBatch() {
        List<Example> train = SyntheticData.examples(64, 7);
        TrainingConfig base = TrainingConfig.builder().epochs(1).learningRate(5e-3).weightDecay(0.01).maxGradNorm(1.0)
                .seed(9).logInterval(100).build();

        TinyClassifier a = model(21, 0.0);
        LossRecorder ra = new LossRecorder();
        Trainer ta = Trainer.builder(a, a.namedTrainableParameters(), TinyClassifier::loss,
                base.toBuilder().batchSize(16).gradientAccumulationSteps(1).build()).listener(ra).progress(false).build();
        ta.fit(trainLoader(train, 16, 9));

        TinyClassifier b = model(21, 0.0);
        LossRecorder rb = new LossRecorder();
        Trainer tb = Trainer.builder(b, b.namedTrainableParameters(), TinyClassifier::loss,
                base.toBuilder().batchSize(8).gradientAccumulationSteps(2).build()).listener(rb).progress(false).build();
        tb.fit(trainLoader(train, 8, 9));

        assertEquals(4, ra.losses.size());
        assertEquals(4, rb.losses.size());
        for (int i = 0; i < 4; i++) {
            assertEquals(ra.losses.get(i), rb.losses.get(i), 1e-6, "loss of update " + (i + 1));
        }
        assertSameValues(snapshot(a.namedTrainableParameters()), snapshot(b.namedTrainableParameters()), 1e-6);
    }

    // ---- early stopping ---------------------------------------------------------------------

    @Test
    void earlyStoppingStopsAfterPatienceEvaluationsWithoutImprovement() {
        List<Example> train = SyntheticData.examples(64, 8);
        TinyClassifier m = model(3, 0.0);
        AtomicInteger evals = new AtomicInteger();
        // accuracy improves once, then stays flat: best at eval 2, stop after 2 more
        EvalFunction flat = (model, batches) -> Map.of("accuracy", evals.incrementAndGet() <= 2 ? 0.1 * evals.get() : 0.2);
        TrainingConfig cfg = TrainingConfig.builder().epochs(10).batchSize(8).learningRate(1e-3).evalInterval(2)
                .earlyStopping("accuracy", 2, true).logInterval(100).build();
        Trainer t = Trainer.builder(m, m.namedTrainableParameters(), TinyClassifier::loss, cfg).evalFunction(flat)
                .progress(false).build();
        TrainResult r = t.fit(trainLoader(train, 8, 1), evalLoader(train));
        assertTrue(r.stoppedEarly());
        assertEquals(8, r.globalStep(), "evals at 2 (0.1), 4 (0.2 best), 6 and 8 without improvement → stop at 8");
        assertEquals(4, evals.get());
        assertTrue(r.stopReason().contains("accuracy"), r.stopReason());
    }

    @Test
    void earlyStoppingOnAMissingMetricNamesIt() {
        TinyClassifier m = model(3, 0.0);
        TrainingConfig cfg = TrainingConfig.builder().epochs(1).batchSize(8).earlyStopping("f1", 1, true).build();
        Trainer t = Trainer.builder(m, m.namedTrainableParameters(), TinyClassifier::loss, cfg).progress(false).build();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> t.fit(trainLoader(SyntheticData.examples(16, 1), 8, 1), evalLoader(SyntheticData.examples(8, 2))));
        assertTrue(e.getMessage().contains("'f1'") && e.getMessage().contains("eval_loss"), e.getMessage());
    }

    // ---- checkpoint and exact resume ------------------------------------------------------------

    private static TrainingConfig resumeConfig(Path out) {
        // 90 examples / batch 8 = 12 batches (the last holds 2) → 6 updates per epoch with accumulation 2
        return TrainingConfig.builder().epochs(3).batchSize(8).gradientAccumulationSteps(2).learningRate(1e-2)
                .weightDecay(0.05).warmupSteps(3).schedule(ScheduleType.COSINE).maxGradNorm(0.5).seed(77)
                .logInterval(3).evalInterval(5).earlyStopping("eval_loss", 100, false)
                .checkpointInterval(4).keepCheckpoints(0).outputDir(out).build();
    }

    /** A model whose embeddings are frozen (like a PEFT base) and whose dropout is active. */
    private static TinyClassifier resumeModel() {
        TinyClassifier m = model(99, 0.3);
        m.child("embeddings").parameter("weight").setTrainable(false);
        return m;
    }

    private static Trainer resumeTrainer(TinyClassifier m, Path out, TrainingListener... ls) {
        Trainer.Builder b = Trainer.builder(m, m.namedTrainableParameters(), TinyClassifier::loss, resumeConfig(out))
                .rng(m.dropoutRng).progress(false);
        for (TrainingListener l : ls) {
            b.listener(l);
        }
        return b.build();
    }

    private static List<Double> trainLosses(Path metrics) throws Exception {
        List<Double> out = new ArrayList<>();
        for (String line : Files.readAllLines(metrics)) {
            JsonNode n = JSON.readTree(line);
            if (n.get("type").asText().equals("train")) {
                out.add(n.get("loss").asDouble());
            }
        }
        return out;
    }

    @Test
    void resumeReproducesTheUninterruptedRun() throws Exception {
        List<Example> train = SyntheticData.examples(90, 31);
        List<Example> eval = SyntheticData.examples(30, 32);

        // A: uninterrupted
        Path outA = tmp.resolve("a");
        TinyClassifier ma = resumeModel();
        LossRecorder ra = new LossRecorder();
        TrainResult resA = resumeTrainer(ma, outA, ra).fit(trainLoader(train, 8, 77), evalLoader(eval));
        assertEquals(18, resA.globalStep());
        assertEquals(18, ra.losses.size());

        // B: stopped after 7 updates (mid-epoch, mid-log-window), checkpointed at the end
        Path outB = tmp.resolve("b");
        TinyClassifier mb = resumeModel();
        LossRecorder rb = new LossRecorder();
        TrainingListener stopAt7 = new TrainingListener() {
            @Override
            public void onStepEnd(TrainerContext ctx, StepEvent s) {
                if (s.step() == 7) {
                    ctx.requestStop("simulated interruption");
                }
            }
        };
        TrainResult resB = resumeTrainer(mb, outB, rb, stopAt7).fit(trainLoader(train, 8, 77), evalLoader(eval));
        assertEquals(7, resB.globalStep());
        assertEquals(outB.resolve("checkpoint-7"), resB.lastCheckpoint());
        JsonNode st = TrainerCheckpoint.readState(outB.resolve("checkpoint-7"));
        assertEquals(7, st.get("global_step").asLong());
        assertEquals(1, st.get("epoch").asInt());
        assertEquals(2, st.get("batch_in_epoch").asInt());
        assertEquals(1, st.get("rng_states").size());

        // C: a fresh process — new model with scrambled trainable weights, new trainer, resume from B
        TinyClassifier mc = resumeModel();
        mc.namedTrainableParameters().values().forEach(p -> p.value().assign(0.123));
        mc.dropoutRng.setState(12345);
        LossRecorder rc = new LossRecorder();
        Trainer tc = resumeTrainer(mc, outB, rc).resume(outB.resolve("checkpoint-7"));
        assertEquals(7, tc.globalStep());
        tc.fit(trainLoader(train, 8, 77), evalLoader(eval));
        assertEquals(List.of(8L, 9L, 10L, 11L, 12L, 13L, 14L, 15L, 16L, 17L, 18L), rc.steps);

        List<Double> joined = new ArrayList<>(rb.losses);
        joined.addAll(rc.losses);
        assertEquals(18, joined.size());
        for (int i = 0; i < 18; i++) {
            assertEquals(ra.losses.get(i), joined.get(i), 0.0, "loss of update " + (i + 1) + " (bitwise)");
        }
        assertSameValues(snapshot(ma.namedTrainableParameters()), snapshot(mc.namedTrainableParameters()), 1e-6);
        assertEquals(ma.dropoutRng.state(), mc.dropoutRng.state(), "dropout RNG continues identically");
        // the logged history (including the log window split by the interruption) matches too
        List<Double> logA = trainLosses(outA.resolve("metrics.jsonl"));
        List<Double> logB = trainLosses(outB.resolve("metrics.jsonl"));
        assertEquals(logA.size(), logB.size());
        for (int i = 0; i < logA.size(); i++) {
            assertEquals(logA.get(i), logB.get(i), 1e-6, "logged loss " + i);
        }

        // D: resume from an intermediate periodic checkpoint of A
        TinyClassifier md = resumeModel();
        LossRecorder rd = new LossRecorder();
        Trainer td = resumeTrainer(md, tmp.resolve("d"), rd).resume(outA.resolve("checkpoint-12"));
        td.fit(trainLoader(train, 8, 77), evalLoader(eval));
        assertEquals(6, rd.losses.size());
        for (int i = 0; i < 6; i++) {
            assertEquals(ra.losses.get(12 + i), rd.losses.get(i), 1e-6, "loss of update " + (13 + i));
        }
        assertSameValues(snapshot(ma.namedTrainableParameters()), snapshot(md.namedTrainableParameters()), 1e-6);
    }

    @Test
    void resumeRejectsMismatchedCheckpoints() {
        Path out = tmp.resolve("mm");
        TinyClassifier m = model(1, 0.0);
        TrainingConfig cfg = TrainingConfig.builder().maxSteps(2).batchSize(8).outputDir(out).build();
        new Trainer(m, m.namedTrainableParameters(), TinyClassifier::loss, null, cfg)
                .fit(trainLoader(SyntheticData.examples(32, 1), 8, 1));
        Path ckpt = out.resolve("checkpoint-2");
        assertTrue(Files.isDirectory(ckpt));

        TinyClassifier other = model(1, 0.0);
        other.child("fc2").parameter("bias").setTrainable(false);
        Trainer t = new Trainer(other, other.namedTrainableParameters(), TinyClassifier::loss, null, cfg);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.resume(ckpt));
        assertTrue(e.getMessage().contains("fc2.bias"), e.getMessage());

        TinyClassifier withRng = model(1, 0.0);
        Trainer t2 = Trainer.builder(withRng, withRng.namedTrainableParameters(), TinyClassifier::loss, cfg)
                .rng(withRng.dropoutRng).build();
        e = assertThrows(IllegalArgumentException.class, () -> t2.resume(ckpt));
        assertTrue(e.getMessage().contains("RNG"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> t2.resume(tmp.resolve("nope")));
    }

    @Test
    void keepsOnlyTheNewestCheckpoints() {
        Path out = tmp.resolve("keep");
        TinyClassifier m = model(1, 0.0);
        TrainingConfig cfg = TrainingConfig.builder().maxSteps(8).batchSize(8).checkpointInterval(2).keepCheckpoints(2)
                .outputDir(out).build();
        new Trainer(m, m.namedTrainableParameters(), TinyClassifier::loss, null, cfg)
                .fit(trainLoader(SyntheticData.examples(24, 1), 8, 1));
        assertEquals(List.of(out.resolve("checkpoint-6"), out.resolve("checkpoint-8")), TrainerCheckpoint.list(out));
        assertEquals(out.resolve("checkpoint-8"), TrainerCheckpoint.latest(out).orElseThrow());
        Map<String, INDArray> saved = TrainerCheckpoint.readParameters(out.resolve("checkpoint-8"));
        assertSameValues(snapshot(m.namedTrainableParameters()), saved, 0.0);
        Map<String, INDArray> opt = TrainerCheckpoint.readOptimizerTensors(out.resolve("checkpoint-8"));
        assertTrue(opt.containsKey("fc1.weight.exp_avg") && opt.containsKey("fc1.weight.exp_avg_sq"), opt.keySet().toString());
    }

    // ---- divergence -----------------------------------------------------------------------------

    @Test
    void nanLossStopsTrainingAndKeepsTheLastGoodCheckpoint() {
        Path out = tmp.resolve("nan");
        TinyClassifier m = model(5, 0.2);
        AtomicInteger calls = new AtomicInteger();
        LossFunction poisoned = (model, b) -> {
            Tensor l = TinyClassifier.loss(model, b);
            // accumulation 1: call k is update k; update 5 gets a NaN loss. (Not Ops.mul(l, NaN):
            // ND4J's scalar ops do not propagate a NaN scalar.)
            return calls.incrementAndGet() == 5
                    ? Ops.add(l, Tensor.constant(Nd4j.createFromArray(Float.NaN).reshape(new long[0]))) : l;
        };
        Map<Long, Map<String, INDArray>> after = new LinkedHashMap<>();
        TrainingListener snap = new TrainingListener() {
            @Override
            public void onStepEnd(TrainerContext ctx, StepEvent s) {
                after.put(s.step(), snapshot(m.namedTrainableParameters()));
            }
        };
        TrainingConfig cfg = TrainingConfig.builder().epochs(2).batchSize(8).learningRate(1e-2).checkpointInterval(1)
                .keepCheckpoints(2).outputDir(out).build();
        Trainer t = Trainer.builder(m, m.namedTrainableParameters(), poisoned, cfg).rng(m.dropoutRng)
                .listener(snap).progress(false).build();
        TrainingDivergedException e = assertThrows(TrainingDivergedException.class,
                () -> t.fit(trainLoader(SyntheticData.examples(64, 1), 8, 1)));
        assertEquals(5, e.step());
        assertEquals("loss", e.quantity());
        assertTrue(Double.isNaN(e.value()));
        assertTrue(e.getMessage().contains("step 5") && e.getMessage().contains("NaN"), e.getMessage());

        assertEquals(out.resolve("checkpoint-4"), TrainerCheckpoint.latest(out).orElseThrow());
        Map<String, INDArray> pre = after.get(4L);
        assertSameValues(pre, TrainerCheckpoint.readParameters(out.resolve("checkpoint-4")), 0.0);
        assertSameValues(pre, snapshot(m.namedTrainableParameters()), 0.0);   // no update applied
        for (Parameter p : m.namedTrainableParameters().values()) {
            assertEquals(null, p.grad(), "gradients are cleared");
        }
        // the last good checkpoint loads into a fresh trainer
        TinyClassifier fresh = model(6, 0.2);
        Trainer t2 = Trainer.builder(fresh, fresh.namedTrainableParameters(), TinyClassifier::loss, cfg)
                .rng(fresh.dropoutRng).progress(false).build().resume(out.resolve("checkpoint-4"));
        assertEquals(4, t2.globalStep());
        assertSameValues(pre, snapshot(fresh.namedTrainableParameters()), 0.0);
    }

    @Test
    void nonFiniteGradientNormStopsTraining() {
        TinyClassifier m = model(5, 0.0);
        Parameter w = m.child("fc2").parameter("weight");
        AtomicInteger calls = new AtomicInteger();
        LossFunction badGrad = (model, b) -> {
            Tensor l = TinyClassifier.loss(model, b);
            if (calls.incrementAndGet() < 3) {
                return l;
            }
            // a term whose value is 0 but whose backward writes NaN into fc2.weight
            Tensor poison = Tensor.fromOp(Nd4j.scalar(0f),
                    g -> w.accumulateGrad(Nd4j.valueArrayOf(w.shape(), Float.NaN)), w);
            return Ops.add(l, poison);
        };
        TrainingConfig cfg = TrainingConfig.builder().epochs(1).batchSize(8).build();
        Trainer t = Trainer.builder(m, m.namedTrainableParameters(), badGrad, cfg).progress(false).build();
        TrainingDivergedException e = assertThrows(TrainingDivergedException.class,
                () -> t.fit(trainLoader(SyntheticData.examples(64, 1), 8, 1)));
        assertEquals(3, e.step());
        assertEquals("grad_norm", e.quantity());
        for (Parameter p : m.namedTrainableParameters().values()) {
            assertFalse(p.value().isNaN().any(), "no NaN reached the parameters");
        }
    }

    // ---- logs ----------------------------------------------------------------------------------------

    @Test
    void metricsJsonlLinesAreJsonAndProgressLinesArePrinted() throws Exception {
        Path out = tmp.resolve("log");
        TinyClassifier m = model(8, 0.0);
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        TrainingConfig cfg = TrainingConfig.builder().epochs(2).batchSize(8).logInterval(2).evalInterval(3)
                .checkpointInterval(-1).outputDir(out).build();
        Trainer t = Trainer.builder(m, m.namedTrainableParameters(), TinyClassifier::loss, cfg).evalFunction(ACCURACY)
                .progressStream(new PrintStream(buf, true, StandardCharsets.UTF_8)).build();
        t.fit(trainLoader(SyntheticData.examples(40, 1), 8, 1), evalLoader(SyntheticData.examples(20, 2)));

        List<String> lines = Files.readAllLines(out.resolve("metrics.jsonl"));
        int train = 0;
        int eval = 0;
        long lastStep = 0;
        for (String line : lines) {
            JsonNode n = JSON.readTree(line);
            assertTrue(n.isObject(), line);
            long step = n.get("step").asLong();
            assertTrue(step >= lastStep, "steps are non-decreasing: " + line);
            lastStep = step;
            if (n.get("type").asText().equals("train")) {
                train++;
                assertTrue(n.get("loss").isNumber() && n.get("learning_rate").isNumber()
                        && n.get("grad_norm").isNumber() && n.get("tokens_per_second").isNumber(), line);
            } else {
                eval++;
                assertEquals("eval", n.get("type").asText());
                assertTrue(n.get("accuracy").isNumber() && n.get("eval_loss").isNumber(), line);
            }
        }
        assertEquals(5, train, "10 updates, logged every 2");
        assertEquals(4, eval, "evaluations after updates 3, 6, 9 and the final one at 10");
        assertFalse(Files.exists(out.resolve("checkpoint-10")), "checkpointInterval -1 disables checkpoints");

        String progress = buf.toString(StandardCharsets.UTF_8);
        assertTrue(progress.contains("step 2/10 (20%)"), progress);
        assertTrue(progress.contains("tok/s") && progress.contains("ETA") && progress.contains("lr "), progress);
        assertTrue(progress.contains("eval @ step 3") && progress.contains("accuracy"), progress);
    }

    // ---- validation ------------------------------------------------------------------------------------

    @Test
    void rejectsFrozenParametersAndMismatchedLoaders() {
        TinyClassifier m = model(1, 0.0);
        Map<String, Parameter> all = m.namedParameters();
        m.child("embeddings").parameter("weight").setTrainable(false);
        TrainingConfig cfg = TrainingConfig.builder().batchSize(8).build();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new Trainer(m, all, TinyClassifier::loss, null, cfg));
        assertTrue(e.getMessage().contains("embeddings.weight") && e.getMessage().contains("frozen"), e.getMessage());

        Trainer t = new Trainer(m, m.namedTrainableParameters(), TinyClassifier::loss, null, cfg);
        assertFalse(t.parameters().containsKey("embeddings.weight"));
        e = assertThrows(IllegalArgumentException.class, () -> t.fit(trainLoader(SyntheticData.examples(16, 1), 4, 1)));
        assertTrue(e.getMessage().contains("TrainingConfig.batchSize"), e.getMessage());

        Optimizer partial = new AdamW(Map.of("fc1.weight", m.child("fc1").parameter("weight")), 1e-3, 0);
        e = assertThrows(IllegalArgumentException.class, () -> Trainer.builder(m, m.namedTrainableParameters(),
                TinyClassifier::loss, cfg).optimizer(partial).build());
        assertTrue(e.getMessage().contains("optimizer"), e.getMessage());
    }

    @Test
    void frozenParametersGetNoGradientAndNoOptimizerState() {
        TinyClassifier m = model(2, 0.0);
        Parameter emb = m.child("embeddings").parameter("weight");
        emb.setTrainable(false);
        INDArray before = emb.value().dup();
        TrainingConfig cfg = TrainingConfig.builder().maxSteps(3).batchSize(8).build();
        Trainer t = new Trainer(m, m.namedTrainableParameters(), TinyClassifier::loss, null, cfg);
        t.fit(trainLoader(SyntheticData.examples(32, 1), 8, 1));
        assertEquals(before, emb.value());
        assertEquals(null, emb.grad());
        OptimizerState st = t.optimizer().state();
        assertFalse(st.steps().containsKey("embeddings.weight"));
        assertEquals(4, st.steps().size());
        assertArrayEquals(new long[]{16, 8}, st.tensors().get("fc1.weight.exp_avg").shape());
        assertNotNull(t.optimizer());
    }
}
