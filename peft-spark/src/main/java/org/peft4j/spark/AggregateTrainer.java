package org.peft4j.spark;

import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.storage.StorageLevel;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.PeftException;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.LrSchedule;
import org.peft4j.core.train.Optimizer;
import org.peft4j.core.train.PaddingCollator;
import org.peft4j.core.train.Trainer;
import org.peft4j.core.train.TrainingConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Tuple2;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

/**
 * {@code exchange: aggregate}: one small Spark job per step. The driver holds the adapter and the
 * optimizer; each step it broadcasts the adapter's values, every task (one per shard, its rows
 * cached on the executor) loads them into its replica, computes the gradient of its shard of the
 * global batch and returns it; the driver sums the gradients in task order (deterministic),
 * clips, steps and checkpoints.
 *
 * <p>Tasks are stateless between steps, so Spark's ordinary task retry covers a lost task (and
 * where the job still fails, the driver re-runs the step: nothing has changed yet). Per step each
 * task receives the adapter (4 bytes per value) and sends its gradient (4 bytes per value); the
 * driver receives N gradients.
 */
final class AggregateTrainer {
    private static final Logger LOG = LoggerFactory.getLogger(AggregateTrainer.class);

    private AggregateTrainer() {
    }

    /** One task's rows, sorted by routing key. */
    record Shard(int task, long[] keys, Sample[] samples) implements Serializable, TrainTask.RowSource {
        @Override
        public Sample take(long key) {
            int i = Arrays.binarySearch(keys, key);
            if (i < 0) {
                throw new IllegalStateException("task " + task + " has no row with routing key " + key
                        + " (the input changed between planning and training?)");
            }
            return samples[i];
        }
    }

    /** A task's contribution to one step. */
    record StepResult(int task, double lossPart, float[] gradient, long computeNanos) implements Serializable {
    }

    /** The adapter's tensor names, shapes and initial values, read from a replica. */
    record Layout(List<String> names, List<long[]> shapes, float[] values) implements Serializable {
    }

    static SparkTrainer.Result fit(JavaSparkContext jsc, JavaPairRDD<Long, Sample> routed, GlobalBatchPlan plan,
                                   Broadcast<GlobalBatchPlan> bp, SparkTrainSpec spec, long t0) {
        TrainingConfig cfg = spec.training();
        JavaRDD<Shard> shards = routed.mapPartitionsWithIndex((idx, it) -> {
            List<Long> keys = new ArrayList<>();
            List<Sample> samples = new ArrayList<>();
            while (it.hasNext()) {
                Tuple2<Long, Sample> t = it.next();
                keys.add(t._1());
                samples.add(t._2());
            }
            long[] k = keys.stream().mapToLong(Long::longValue).toArray();
            return List.of(new Shard(idx, k, samples.toArray(new Sample[0]))).iterator();
        }, true).persist(StorageLevel.MEMORY_AND_DISK());
        try {
            Layout layout = shards.map(s -> layout(spec)).first();
            Map<String, Parameter> params = new LinkedHashMap<>();
            INDArray[] init = GradientExchange.unflatten(layout.values(), layout.shapes());
            for (int i = 0; i < init.length; i++) {
                params.put(layout.names().get(i), new Parameter(init[i], true));
            }
            List<Parameter> ps = new ArrayList<>(params.values());
            Optimizer opt = Trainer.createOptimizer(cfg, params);
            HadoopCheckpoints ckpts = spec.checkpointDir() == null ? null : new HadoopCheckpoints(spec.checkpointDir());
            List<Double> losses = new ArrayList<>();
            long start = 0;
            OptionalLong latest = ckpts == null ? OptionalLong.empty() : ckpts.latest();
            if (latest.isPresent()) {
                HadoopCheckpoints.Saved saved = ckpts.read(latest.getAsLong());
                params.forEach((k, p) -> {
                    INDArray v = saved.parameters().get(k);
                    if (v == null || !Arrays.equals(v.shape(), p.shape())) {
                        throw new IllegalArgumentException("checkpoint " + spec.checkpointDir() + "/checkpoint-" + latest.getAsLong()
                                + " does not hold parameter '" + k + "' with shape " + Arrays.toString(p.shape()));
                    }
                    p.value().assign(v);
                });
                opt.loadState(saved.optimizer());
                opt.setLearningRate(saved.learningRate());
                for (double l : saved.losses()) {
                    losses.add(l);
                }
                start = latest.getAsLong();
                LOG.info("resuming from checkpoint-{}", start);
            }
            LrSchedule schedule = cfg.lrSchedule(plan.totalSteps);
            long computeNs = 0, overheadNs = 0, updateNs = 0, ckptNs = 0, ckptBytes = 0, sent = 0, received = 0, retries = 0;
            for (long step = start; step < plan.totalSteps; step++) {
                long s0 = System.nanoTime();
                float[] weights = GradientExchange.flatten(values(ps), layout.shapes());
                Broadcast<float[]> w = jsc.broadcast(weights);
                List<StepResult> results = null;
                final long st = step;
                for (int attempt = 0; results == null; attempt++) {
                    try {
                        results = new ArrayList<>(shards.map(sh -> stepOnShard(spec, bp.value(), sh, st, w.value())).collect());
                    } catch (Exception e) {   // SparkException is checked in Java's eyes
                        if (attempt >= spec.maxRestarts()) {
                            throw new PeftException("step " + (step + 1) + " failed " + (attempt + 1) + " time(s): " + e.getMessage(), e);
                        }
                        retries++;
                        LOG.warn("step {} failed ({}); running it again (nothing was updated)", step + 1, e.getMessage());
                    }
                }
                w.destroy();
                results.sort(Comparator.comparingInt(StepResult::task));
                long s1 = System.nanoTime();
                float[] total = new float[weights.length];
                double loss = 0;
                long maxCompute = 0;
                for (StepResult r : results) {
                    float[] g = r.gradient();
                    for (int i = 0; i < total.length; i++) {
                        total[i] += g[i];
                    }
                    loss += r.lossPart();
                    maxCompute = Math.max(maxCompute, r.computeNanos());
                    sent += 4L * g.length;
                    received += 4L * weights.length;
                }
                INDArray[] summed = GradientExchange.unflatten(total, layout.shapes());
                for (int i = 0; i < ps.size(); i++) {
                    ps.get(i).zeroGrad();
                    ps.get(i).accumulateGrad(summed[i]);
                }
                TrainTask.update(opt, ps, cfg, schedule, step, loss);
                losses.add(loss);
                long s2 = System.nanoTime();
                computeNs += maxCompute;
                overheadNs += (s1 - s0) - maxCompute;
                updateNs += s2 - s1;
                long done = step + 1;
                if (ckpts != null && cfg.checkpointInterval() > 0 && (done % cfg.checkpointInterval() == 0 || done == plan.totalSteps)) {
                    long c0 = System.nanoTime();
                    Map<String, INDArray> vals = new LinkedHashMap<>();
                    params.forEach((k, p) -> vals.put(k, p.value()));
                    ckptBytes += ckpts.write(done, vals, opt.state(), opt.learningRate(),
                            losses.stream().mapToDouble(Double::doubleValue).toArray());
                    ckpts.prune(cfg.keepCheckpoints());
                    ckptNs += System.nanoTime() - c0;
                }
            }
            float[] fin = GradientExchange.flatten(values(ps), layout.shapes());
            Map<String, byte[]> files = spec.peftJson() == null ? Map.of() : shards.map(sh -> adapterFiles(spec, fin)).first();
            long steps = Math.max(1, plan.totalSteps - start);
            double stepTotal = computeNs + overheadNs + updateNs;
            long values = layout.values().length;
            return new SparkTrainer.Result(losses.stream().mapToDouble(Double::doubleValue).toArray(), plan.totalSteps, start,
                    SparkTrainSpec.AGGREGATE, 1 + (int) retries, values, files, 4L * values, sent / steps + received / steps,
                    stepTotal / 1e9 / steps, stepTotal == 0 ? 0 : computeNs / stepTotal, stepTotal == 0 ? 0 : overheadNs / stepTotal,
                    stepTotal == 0 ? 0 : overheadNs / stepTotal, stepTotal == 0 ? 0 : updateNs / stepTotal, ckptNs / 1e9, ckptBytes,
                    (System.nanoTime() - t0) / 1e9, List.of());
        } finally {
            shards.unpersist(false);
        }
    }

    private static List<INDArray> values(List<Parameter> ps) {
        List<INDArray> v = new ArrayList<>();
        for (Parameter p : ps) {
            v.add(p.value());
        }
        return v;
    }

    private static <T> T withReplica(SparkTrainSpec spec, java.util.function.Function<TrainTask.Replica, T> f) {
        if (spec.threadsPerTask() > 0) {
            Nd4j.getEnvironment().setMaxThreads(spec.threadsPerTask());
        }
        String key = spec.replicaKey();
        TrainTask.Replica r = Replicas.acquire(key, () -> new TrainTask.Replica(spec));
        try {
            return f.apply(r);
        } finally {
            Replicas.release(key, r);
        }
    }

    static Layout layout(SparkTrainSpec spec) {
        return withReplica(spec, r -> {
            List<String> names = new ArrayList<>(r.params.keySet());
            List<long[]> shapes = new ArrayList<>();
            List<INDArray> init = new ArrayList<>();
            for (String n : names) {
                shapes.add(r.params.get(n).shape());
                init.add(r.initial.get(n));
            }
            return new Layout(names, shapes, GradientExchange.flatten(init, shapes));
        });
    }

    private static void load(TrainTask.Replica r, float[] weights) {
        List<Parameter> ps = new ArrayList<>(r.params.values());
        List<long[]> shapes = new ArrayList<>();
        for (Parameter p : ps) {
            shapes.add(p.shape());
        }
        INDArray[] v = GradientExchange.unflatten(weights, shapes);
        for (int i = 0; i < ps.size(); i++) {
            ps.get(i).value().assign(v[i]);
            ps.get(i).zeroGrad();
        }
    }

    static StepResult stepOnShard(SparkTrainSpec spec, GlobalBatchPlan plan, Shard shard, long step, float[] weights) {
        return withReplica(spec, r -> {
            TrainTask.StepHook h = TrainTask.hook;
            if (h != null) {
                h.beforeStep(shard.task(), step, 0);
            }
            load(r, weights);
            r.train();
            long c0 = System.nanoTime();
            PaddingCollator<Example> collator = PaddingCollator.dynamic(TrainTask.padId(r), spec.maxLength(), true);
            double part = TrainTask.computeGradients(spec, r, plan, shard, collator, step, shard.task(), false);
            List<Parameter> ps = new ArrayList<>(r.params.values());
            List<INDArray> grads = new ArrayList<>();
            List<long[]> shapes = new ArrayList<>();
            for (Parameter p : ps) {
                grads.add(p.grad());
                shapes.add(p.shape());
            }
            float[] g = GradientExchange.flatten(grads, shapes);
            for (Parameter p : ps) {
                p.zeroGrad();
            }
            return new StepResult(shard.task(), part, g, System.nanoTime() - c0);
        });
    }

    static Map<String, byte[]> adapterFiles(SparkTrainSpec spec, float[] weights) {
        return withReplica(spec, r -> {
            load(r, weights);
            return TrainTask.adapterFiles(r.peft);
        });
    }
}
