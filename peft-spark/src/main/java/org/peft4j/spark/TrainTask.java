package org.peft4j.spark;

import org.apache.spark.BarrierTaskContext;
import org.apache.spark.broadcast.Broadcast;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.train.Batch;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.GradClipping;
import org.peft4j.core.train.LrSchedule;
import org.peft4j.core.train.Optimizer;
import org.peft4j.core.train.OptimizerState;
import org.peft4j.core.train.PaddingCollator;
import org.peft4j.core.train.Trainer;
import org.peft4j.core.train.TrainingConfig;
import org.peft4j.core.train.TrainingDivergedException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Tuple2;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.AbstractFunction1;

import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalLong;
import java.util.TreeMap;

/**
 * The body of one barrier task: a full training run over this task's shard of every global
 * batch, in lock-step with the other tasks.
 *
 * <p>Per update: forward and backward on the task's rows of each accumulated batch, the loss
 * seeded with {@code rows/batchRows/accumulation} so that the SUM over tasks is the gradient of
 * the single-process mean loss; then one {@link BarrierTaskContext#allGather} of the adapter
 * gradients (only the trainable tensors), a sum in task order, clipping, the scheduled learning
 * rate and the optimizer step — the same on every replica, so replicas stay bit-identical (each
 * message carries a checksum of the sender's parameters; a mismatch stops the run). With
 * {@code syncEvery = k > 1} tasks take k local steps and then average parameters and
 * optimizer state (one all-gather per k steps).
 *
 * <p>At start every task reads the newest checkpoint that all tasks can see (0 when none), so a
 * retried stage or a resubmitted job continues from it; dropout generators are re-seeded from
 * {@code (seed, step, batch, task)} so a resumed step draws the same masks.
 */
final class TrainTask extends AbstractFunction1<scala.collection.Iterator<Tuple2<Long, Sample>>, scala.collection.Iterator<TaskReport>>
        implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(TrainTask.class);

    /** Called before every step in the task's JVM; tests use it to kill a task once. Null in production. */
    interface StepHook {
        void beforeStep(int task, long step, int stageAttempt);
    }

    static volatile StepHook hook;

    private final SparkTrainSpec spec;
    private final Broadcast<GlobalBatchPlan> planBroadcast;

    TrainTask(SparkTrainSpec spec, Broadcast<GlobalBatchPlan> plan) {
        this.spec = spec;
        this.planBroadcast = plan;
    }

    /** A base model with the adapter applied, and the adapter's initial values (restored before every run). */
    static final class Replica {
        final ModelSource.Loaded base;
        final PeftModel peft;
        final Map<String, Parameter> params;
        final Map<String, INDArray> initial = new LinkedHashMap<>();

        Replica(SparkTrainSpec spec) {
            this.base = spec.source().load();
            if (spec.peftJson() == null) {
                // full fine-tuning (the baseline PEFT is measured against): every weight is trained and exchanged
                this.peft = null;
                base.model().namedParameters().values().forEach(p -> p.setTrainable(true));
                this.params = new LinkedHashMap<>(base.model().namedParameters());
            } else {
                this.peft = Peft.apply(base.model(), spec.peft());
                this.params = peft.trainableParameters();
            }
            params.forEach((k, p) -> initial.put(k, p.value().dup()));
        }

        void train() {
            base.model().train();
        }

        void reset() {
            params.forEach((k, p) -> {
                p.value().assign(initial.get(k));
                p.zeroGrad();
            });
        }
    }

    @Override
    public scala.collection.Iterator<TaskReport> apply(scala.collection.Iterator<Tuple2<Long, Sample>> rows) {
        BarrierTaskContext ctx = BarrierTaskContext.get();
        if (spec.threadsPerTask() > 0) {
            Nd4j.getEnvironment().setMaxThreads(spec.threadsPerTask());
        }
        String key = spec.replicaKey();
        Replica r = Replicas.acquire(key, () -> new Replica(spec));
        try {
            r.reset();
            TaskReport rep = run(ctx, r, CollectionConverters.asJava(rows));
            return CollectionConverters.asScala(List.of(rep).iterator());
        } finally {
            r.train();
            Replicas.release(key, r);
        }
    }

    private TaskReport run(BarrierTaskContext ctx, Replica r, Iterator<Tuple2<Long, Sample>> rows) {
        long t0 = System.nanoTime();
        GlobalBatchPlan plan = planBroadcast.value();
        int task = ctx.partitionId();
        int n = plan.tasks;
        if (ctx.getTaskInfos().length != n) {
            throw new IllegalStateException("the barrier stage has " + ctx.getTaskInfos().length + " tasks, the plan " + n);
        }
        TrainingConfig cfg = spec.training();
        List<String> names = new ArrayList<>(r.params.keySet());
        List<Parameter> ps = new ArrayList<>(r.params.values());
        List<long[]> shapes = new ArrayList<>();
        long values = 0;
        for (Parameter p : ps) {
            shapes.add(p.shape());
            values += p.length();
        }
        Optimizer opt = Trainer.createOptimizer(cfg, r.params);
        HadoopCheckpoints ckpts = spec.checkpointDir() == null ? null : new HadoopCheckpoints(spec.checkpointDir());

        // the newest checkpoint every task sees (a zombie writer of a failed attempt cannot split the tasks)
        OptionalLong mine = ckpts == null ? OptionalLong.empty() : ckpts.latest();
        long start = Long.MAX_VALUE;
        for (String s : ctx.allGather(Long.toString(mine.orElse(0)))) {
            start = Math.min(start, Long.parseLong(s));
        }
        List<Double> losses = new ArrayList<>();
        if (start > 0) {
            HadoopCheckpoints.Saved saved = ckpts.read(start);
            for (int i = 0; i < ps.size(); i++) {
                INDArray v = saved.parameters().get(names.get(i));
                if (v == null || !Arrays.equals(v.shape(), ps.get(i).shape())) {
                    throw new IllegalArgumentException("checkpoint " + spec.checkpointDir() + "/checkpoint-" + start
                            + " does not hold parameter '" + names.get(i) + "' with shape " + Arrays.toString(ps.get(i).shape())
                            + (v == null ? "" : " (it has " + Arrays.toString(v.shape()) + ")"));
                }
                ps.get(i).value().assign(v);
            }
            opt.loadState(saved.optimizer());
            opt.setLearningRate(saved.learningRate());
            for (double l : saved.losses()) {
                losses.add(l);
            }
            LOG.info("task {} resumes from checkpoint-{}", task, start);
        }
        long firstKey = start >= plan.totalSteps ? Long.MAX_VALUE : plan.firstKeyOfStep(start);
        PeekingRows data = new PeekingRows(rows, firstKey);
        PaddingCollator<Example> collator = PaddingCollator.dynamic(padId(r), spec.maxLength(), true);
        LrSchedule schedule = cfg.lrSchedule(plan.totalSteps);
        r.train();

        long exchanges = 0, sent = 0, received = 0, computeNs = 0, exchangeNs = 0, gatherNs = 0, updateNs = 0, ckptNs = 0, ckptBytes = 0;
        List<Double> pendingLosses = new ArrayList<>();   // local steps since the last sync (syncEvery > 1)
        int k = spec.syncEvery();
        for (long step = start; step < plan.totalSteps; step++) {
            StepHook h = hook;
            if (h != null) {
                h.beforeStep(task, step, ctx.stageAttemptNumber());
            }
            long c0 = System.nanoTime();
            double lossPart = computeGradients(spec, r, plan, data, collator, step, task, k > 1);
            long c1 = System.nanoTime();
            computeNs += c1 - c0;
            if (k == 1) {
                float[] g = GradientExchange.flatten(grads(ps), shapes);
                String msg = GradientExchange.encode(lossPart + "," + checksum(ps), g);
                long g0 = System.nanoTime();
                String[] all = ctx.allGather(msg);
                gatherNs += System.nanoTime() - g0;
                double stepLoss = 0;
                String sum0 = null;
                for (int i = 0; i < all.length; i++) {
                    String[] hd = GradientExchange.header(all[i]).split(",");
                    stepLoss += Double.parseDouble(hd[0]);
                    if (sum0 == null) {
                        sum0 = hd[1];
                    } else if (!sum0.equals(hd[1])) {
                        throw new IllegalStateException("replicas diverged before step " + (step + 1) + ": task 0 holds parameters with checksum "
                                + sum0 + ", task " + i + " " + hd[1]);
                    }
                    received += all[i].length();
                }
                float[] total = GradientExchange.sum(all, g.length);
                INDArray[] summed = GradientExchange.unflatten(total, shapes);
                for (int i = 0; i < ps.size(); i++) {
                    ps.get(i).zeroGrad();
                    ps.get(i).accumulateGrad(summed[i]);
                }
                exchanges++;
                sent += msg.length();
                long c2 = System.nanoTime();
                exchangeNs += c2 - c1;
                update(opt, ps, cfg, schedule, step, stepLoss);
                updateNs += System.nanoTime() - c2;
                losses.add(stepLoss);
            } else {
                // local SGD: this task's own shard-mean gradient, its own step
                update(opt, ps, cfg, schedule, step, lossPart);
                pendingLosses.add(lossPart);
                long c2 = System.nanoTime();
                updateNs += c2 - c1;
                boolean syncNow = (step + 1) % k == 0 || step + 1 == plan.totalSteps;
                if (syncNow) {
                    long[] sz = new long[]{sent, received};
                    averageReplicas(ctx, ps, shapes, opt, pendingLosses, losses, plan, step, sz);
                    sent = sz[0];
                    received = sz[1];
                    exchanges++;
                    pendingLosses.clear();
                    exchangeNs += System.nanoTime() - c2;
                }
            }
            long done = step + 1;
            boolean synced = k == 1 || done % k == 0 || done == plan.totalSteps;
            if (ckpts != null && task == 0 && synced && cfg.checkpointInterval() > 0
                    && (done % cfg.checkpointInterval() == 0 || done == plan.totalSteps)) {
                long w0 = System.nanoTime();
                Map<String, INDArray> vals = new LinkedHashMap<>();
                for (int i = 0; i < ps.size(); i++) {
                    vals.put(names.get(i), ps.get(i).value());
                }
                ckptBytes += ckpts.write(done, vals, opt.state(), opt.learningRate(),
                        losses.stream().mapToDouble(Double::doubleValue).toArray());
                ckpts.prune(cfg.keepCheckpoints());
                ckptNs += System.nanoTime() - w0;
            }
        }
        Map<String, byte[]> files = task == 0 && r.peft != null ? adapterFiles(r.peft) : Map.of();
        return new TaskReport(task, start, plan.totalSteps - start, losses.stream().mapToDouble(Double::doubleValue).toArray(),
                exchanges, sent, received, computeNs, exchangeNs, gatherNs, updateNs, ckptNs, ckptBytes, System.nanoTime() - t0, values, files);
    }

    /**
     * Forward and backward over this task's rows of the step's batches; returns this task's share
     * of the step loss ({@code Σ_batches loss_task · rows/batchRows / accumulation}; with
     * {@code localMean} the task's own mean loss, the gradient scaled to its shard alone).
     */
    static double computeGradients(SparkTrainSpec spec, Replica r, GlobalBatchPlan plan, RowSource data,
                                   PaddingCollator<Example> collator, long step, int task, boolean localMean) {
        int epoch = plan.epochOfStep(step);
        int[] batches = plan.batchesOfStep(step);
        int myTotal = 0;
        for (int j : batches) {
            int b = plan.batchLength(j);
            myTotal += plan.shardStart(b, task + 1) - plan.shardStart(b, task);
        }
        double part = 0;
        for (int j : batches) {
            int b = plan.batchLength(j);
            int lo = plan.shardStart(b, task);
            int hi = plan.shardStart(b, task + 1);
            List<Example> ex = new ArrayList<>(hi - lo);
            for (int pos = lo; pos < hi; pos++) {
                long expected = (long) epoch * plan.size + (long) j * plan.batchSize + pos;
                ex.add(encode(spec, r, data.take(expected)));
            }
            if (ex.isEmpty()) {
                continue;
            }
            reseedDropout(spec, r, step, j, task);
            Batch batch = collator.collate(ex);
            Tensor logits = r.base.model().forward(batch.inputIds(), batch.attentionMask(), batch.tokenTypeIds());
            Tensor loss = Ops.crossEntropy(logits, batch.labels(), Ops.Reduction.MEAN);
            double lv = loss.item();
            if (!Double.isFinite(lv)) {
                throw new TrainingDivergedException(step + 1, "loss", lv, "task " + task + ", epoch " + epoch + ", batch " + j);
            }
            double w = localMean ? (double) ex.size() / myTotal : (double) ex.size() / b / batches.length;
            loss.backward(Nd4j.valueArrayOf(loss.shape(), w, loss.value().dataType()));
            part += lv * w;
        }
        return part;
    }

    static void update(Optimizer opt, List<Parameter> ps, TrainingConfig cfg, LrSchedule schedule, long step, double loss) {
        double norm = cfg.maxGradNorm() > 0 ? GradClipping.clipGradNorm(ps, cfg.maxGradNorm()) : GradClipping.globalNorm(ps);
        if (!Double.isFinite(norm)) {
            opt.zeroGrad();
            throw new TrainingDivergedException(step + 1, "grad_norm", norm, "loss " + loss);
        }
        opt.setLearningRate(schedule.lr(step));
        opt.step();
        opt.zeroGrad();
    }

    /** Local SGD sync: every replica replaces parameters and optimizer tensors by the mean over tasks. */
    private static void averageReplicas(BarrierTaskContext ctx, List<Parameter> ps, List<long[]> shapes, Optimizer opt,
                                        List<Double> pending, List<Double> losses, GlobalBatchPlan plan, long step, long[] bytes) {
        OptimizerState os = opt.state();
        TreeMap<String, INDArray> slots = new TreeMap<>(os.tensors());
        List<INDArray> arrays = new ArrayList<>();
        List<long[]> all = new ArrayList<>(shapes);
        for (Parameter p : ps) {
            arrays.add(p.value());
        }
        for (INDArray a : slots.values()) {
            arrays.add(a);
            all.add(a.shape());
        }
        float[] v = GradientExchange.flatten(arrays, all);
        StringBuilder hd = new StringBuilder();
        for (double l : pending) {
            hd.append(hd.length() == 0 ? "" : ";").append(l);
        }
        String msg = GradientExchange.encode(hd.toString(), v);
        String[] msgs = ctx.allGather(msg);
        double[] stepLoss = new double[pending.size()];
        for (String m : msgs) {
            String[] ls = GradientExchange.header(m).split(";");
            for (int i = 0; i < stepLoss.length; i++) {
                // each task's loss is its shard mean; the global mean weighs them by shard size (equal up to rounding)
                stepLoss[i] += Double.parseDouble(ls[i]) / msgs.length;
            }
            bytes[1] += m.length();
        }
        bytes[0] += msg.length();
        for (double l : stepLoss) {
            losses.add(l);
        }
        float[] sum = GradientExchange.sum(msgs, v.length);
        float inv = 1f / msgs.length;
        for (int i = 0; i < sum.length; i++) {
            sum[i] *= inv;
        }
        INDArray[] mean = GradientExchange.unflatten(sum, all);
        for (int i = 0; i < ps.size(); i++) {
            ps.get(i).value().assign(mean[i]);
        }
        Map<String, INDArray> avg = new LinkedHashMap<>();
        int i = ps.size();
        for (String key : slots.keySet()) {
            avg.put(key, mean[i++]);
        }
        opt.loadState(new OptimizerState(os.type(), os.steps(), avg));
    }

    private static List<INDArray> grads(List<Parameter> ps) {
        List<INDArray> g = new ArrayList<>(ps.size());
        for (Parameter p : ps) {
            g.add(p.grad());
        }
        return g;
    }

    /** Σ of all parameter values in double, printed exactly: equal on bit-identical replicas. */
    private static String checksum(List<Parameter> ps) {
        double s = 0;
        for (Parameter p : ps) {
            s += p.value().sumNumber().doubleValue();
        }
        return Double.toHexString(s);
    }

    private static void reseedDropout(SparkTrainSpec spec, Replica r, long step, int batch, int task) {
        Rng[] rngs = r.base.dropoutRngs();
        long seed = spec.training().seed();
        for (int i = 0; i < rngs.length; i++) {
            long s = seed * 0x9E3779B97F4A7C15L + step * 1_000_003L + batch * 7919L + task * 104_729L + i;
            rngs[i].setState(new Rng(s).nextLong());
        }
    }

    private static Example encode(SparkTrainSpec spec, Replica r, Sample s) {
        int[] ids;
        if (s.ids() != null) {
            ids = s.ids().length > spec.maxLength() ? Arrays.copyOf(s.ids(), spec.maxLength()) : s.ids();
        } else {
            if (r.base.tokenizer() == null) {
                throw new IllegalArgumentException("column '" + spec.textColumn() + "' holds text but the model source '"
                        + spec.source().key() + "' has no tokenizer (give token ids, or a model folder with tokenizer.json)");
            }
            ids = r.base.tokenizer().encode(s.text(), spec.maxLength(), true).ids();
        }
        return new Example(ids, s.label());
    }

    static int padId(Replica r) {
        return r.base.tokenizer() == null ? r.base.model().config().padTokenId() : Math.max(r.base.tokenizer().padId(), 0);
    }

    static Map<String, byte[]> adapterFiles(PeftModel pm) {
        try {
            Path dir = Files.createTempDirectory("peft-spark-adapter-");
            try {
                pm.save(dir);
                Map<String, byte[]> out = new TreeMap<>();
                try (var files = Files.list(dir)) {
                    for (Path f : (Iterable<Path>) files::iterator) {
                        out.put(f.getFileName().toString(), Files.readAllBytes(f));
                    }
                }
                return out;
            } finally {
                try (var files = Files.list(dir)) {
                    for (Path f : (Iterable<Path>) files::iterator) {
                        Files.deleteIfExists(f);
                    }
                }
                Files.deleteIfExists(dir);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot serialize the trained adapter", e);
        }
    }

    /** Where a task's rows come from: the row with a given routing key (an error when it is not the next / not there). */
    interface RowSource {
        Sample take(long key);
    }

    /** The task's sorted rows, consumed in routing-key order; rows below {@code skipBelow} are skipped (resume). */
    private static final class PeekingRows implements RowSource {
        private final Iterator<Tuple2<Long, Sample>> it;
        private final long skipBelow;
        private boolean skipped;

        PeekingRows(Iterator<Tuple2<Long, Sample>> it, long skipBelow) {
            this.it = it;
            this.skipBelow = skipBelow;
        }

        @Override
        public Sample take(long expectedKey) {
            while (it.hasNext()) {
                Tuple2<Long, Sample> t = it.next();
                if (!skipped && t._1() < skipBelow) {
                    continue;
                }
                skipped = true;
                if (t._1() != expectedKey) {
                    throw new IllegalStateException(String.format(Locale.ROOT,
                            "task data out of order: expected routing key %d, got %d (the input changed between planning and training?)",
                            expectedKey, t._1()));
                }
                return t._2();
            }
            throw new IllegalStateException("task ran out of rows at routing key " + expectedKey);
        }
    }
}
