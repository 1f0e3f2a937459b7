package org.peft4j.spark;

import org.apache.spark.Partitioner;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.peft4j.core.peft.PeftException;
import org.peft4j.core.train.TrainingConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Tuple2;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * Data-parallel adapter training on Spark (driver side).
 *
 * <p>The rows of a DataFrame ({@code text}, {@code label}) are routed by a {@link GlobalBatchPlan}
 * to the task that consumes them and sorted into consumption order (one shuffle, before
 * training). Then, by {@link SparkTrainSpec#exchange()}:
 * <ul>
 *   <li>{@code aggregate} ({@link AggregateTrainer}): one job per step; the driver broadcasts the
 *       adapter, each task returns its shard's gradient, the driver sums in task order and steps
 *       the optimizer. Tasks are stateless, so Spark retries a lost task; a failed step is re-run.</li>
 *   <li>{@code barrier} ({@link TrainTask}): ONE barrier stage of {@code numTasks} tasks runs the
 *       whole loop, exchanging only adapter gradients per step through
 *       {@code BarrierTaskContext.allGather}. Spark does not retry a failed barrier result stage
 *       ("Could not recover from a failed barrier ResultStage"), so the driver resubmits the job
 *       up to {@code maxRestarts} times and the tasks continue from the newest checkpoint.</li>
 * </ul>
 * The driver finally writes the adapter folder from the bytes a replica returns; it never loads
 * the model itself.
 */
public final class SparkTrainer {
    private static final Logger LOG = LoggerFactory.getLogger(SparkTrainer.class);

    private SparkTrainer() {
    }

    /**
     * Training's outcome: the global loss of every update and the run's counters.
     *
     * @param startStep          the step the last attempt started from (0, or a checkpoint's)
     * @param attempts           barrier: jobs submitted (1 + restarts); aggregate: 1 + step re-runs
     * @param bytesPerStepPerTask payload bytes one task sends per exchange (its gradient: Base64 text for barrier, float32 for aggregate)
     * @param exchangedPerStep   payload bytes moved per exchange by all tasks together, sent plus received
     *                           (barrier: N messages up, N×N down through the driver; aggregate: N gradients up, N adapters down)
     * @param stepSeconds        mean wall time of a step (task 0: compute + exchange + update, last attempt)
     * @param computeShare       forward/backward share of task 0's step time; exchangeShare and updateShare the rest
     * @param gatherShare        the part of exchangeShare spent inside allGather (transfer through the driver and
     *                           waiting for the slowest task); the rest of it is encoding, decoding and summing
     */
    public record Result(double[] losses, long steps, long startStep, String exchange, int attempts, long trainableValues, Map<String, byte[]> adapterFiles,
                         long bytesPerStepPerTask, long exchangedPerStep, double stepSeconds, double computeShare,
                         double exchangeShare, double gatherShare, double updateShare, double checkpointSeconds, long checkpointBytes,
                         double wallSeconds, List<TaskReport> reports) {
        /** Writes the adapter folder ({@code adapter_config.json}, {@code adapter_model.safetensors}) to a Hadoop URI or path. */
        public void saveAdapter(String uri) {
            HadoopCheckpoints.writeFolder(uri, adapterFiles);
        }
    }

    /** Trains on {@code data} (columns {@code spec.textColumn()}, {@code spec.labelColumn()}). */
    public static Result fit(Dataset<Row> data, SparkTrainSpec spec) {
        for (String c : List.of(spec.textColumn(), spec.labelColumn())) {
            if (!Arrays.asList(data.columns()).contains(c)) {
                throw new IllegalArgumentException("the training DataFrame has no column '" + c + "' (columns: "
                        + Arrays.toString(data.columns()) + ")");
            }
        }
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(data.sparkSession().sparkContext());
        TrainingConfig cfg = spec.training();
        long t0 = System.nanoTime();
        JavaRDD<Row> rows = data.select(spec.textColumn(), spec.labelColumn()).javaRDD();
        long count = rows.count();
        if (count > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("more than 2^31 training rows: " + count);
        }
        GlobalBatchPlan plan = new GlobalBatchPlan((int) count, cfg, spec.numTasks());
        LOG.info("training {} rows on {} tasks: global batch {}, {} updates, {} epoch(s)", count, spec.numTasks(),
                cfg.batchSize(), plan.totalSteps, plan.epochs);
        Broadcast<GlobalBatchPlan> bp = jsc.broadcast(plan);

        List<String> labels = spec.labels();
        String textCol = spec.textColumn();
        String labelCol = spec.labelColumn();
        int epochs = plan.epochs;
        JavaPairRDD<Long, Sample> keyed = rows.zipWithIndex().flatMapToPair(t -> {
            Sample s = toSample(t._1(), labels, textCol, labelCol, t._2());
            GlobalBatchPlan p = bp.value();
            List<Tuple2<Long, Sample>> out = new ArrayList<>(epochs);
            for (int e = 0; e < epochs; e++) {
                out.add(new Tuple2<>(p.key(e, (int) (long) t._2()), s));
            }
            return out.iterator();
        });
        JavaPairRDD<Long, Sample> routed = keyed.repartitionAndSortWithinPartitions(
                new TaskPartitioner(plan.size, plan.batchSize, plan.tasks), Comparator.<Long>naturalOrder());

        if (SparkTrainSpec.AGGREGATE.equals(spec.exchange())) {
            return AggregateTrainer.fit(jsc, routed, plan, bp, spec, t0);
        }
        ClassTag<TaskReport> tag = ClassTag$.MODULE$.apply(TaskReport.class);
        Exception last = null;
        for (int attempt = 0; attempt <= spec.maxRestarts(); attempt++) {
            try {
                RDD<TaskReport> out = routed.rdd().barrier().mapPartitions(new TrainTask(spec, bp), false, tag);
                List<TaskReport> reports = new ArrayList<>(new JavaRDD<>(out, tag).collect());
                reports.sort(Comparator.comparingInt(TaskReport::task));
                return result(reports, attempt + 1, (System.nanoTime() - t0) / 1e9);
            } catch (Exception e) {   // SparkException is checked in Java's eyes
                last = e;
                if (spec.checkpointDir() == null || attempt == spec.maxRestarts()) {
                    break;
                }
                LOG.warn("training job attempt {} failed ({}); resubmitting, it resumes from the newest checkpoint in {}",
                        attempt + 1, rootMessage(e), spec.checkpointDir());
            }
        }
        throw new PeftException("Spark training failed after " + (spec.maxRestarts() + 1) + " attempt(s)"
                + (spec.checkpointDir() == null ? " (no checkpoint_dir, so no resume)" : "") + ": " + rootMessage(last), last);
    }

    private static Result result(List<TaskReport> reports, int attempts, double wall) {
        TaskReport r0 = reports.get(0);
        for (TaskReport r : reports) {
            if (r.losses().length != r0.losses().length) {
                throw new IllegalStateException("tasks report loss curves of different lengths");
            }
        }
        long steps = Math.max(1, r0.steps());
        double step = (r0.computeNanos() + r0.exchangeNanos() + r0.updateNanos()) / 1e9 / steps;
        double total = r0.computeNanos() + r0.exchangeNanos() + r0.updateNanos();
        long exchanges = Math.max(1, r0.exchanges());
        long moved = 0;
        for (TaskReport r : reports) {
            moved += r.bytesSent() + r.bytesReceived();
        }
        return new Result(r0.losses(), r0.startStep() + r0.steps(), r0.startStep(), SparkTrainSpec.BARRIER, attempts,
                r0.trainableValues(), r0.adapterFiles(), r0.bytesSent() / exchanges, moved / exchanges, step,
                total == 0 ? 0 : r0.computeNanos() / total, total == 0 ? 0 : r0.exchangeNanos() / total,
                total == 0 ? 0 : r0.gatherNanos() / total,
                total == 0 ? 0 : r0.updateNanos() / total, r0.checkpointNanos() / 1e9, r0.checkpointBytes(), wall, reports);
    }

    static Sample toSample(Row row, List<String> labels, String textCol, String labelCol, long index) {
        Object text = row.get(0);
        Object label = row.get(1);
        int y;
        if (label instanceof Number num) {
            y = num.intValue();
        } else if (label instanceof String s) {
            y = labels.indexOf(s);
            if (y < 0) {
                throw new IllegalArgumentException("row " + index + ": label '" + s + "' in column '" + labelCol
                        + "' is not one of " + labels);
            }
        } else {
            throw new IllegalArgumentException("row " + index + ": column '" + labelCol + "' must hold class ids or names, got "
                    + (label == null ? "null" : label.getClass().getSimpleName()));
        }
        if (y < 0 || y >= labels.size()) {
            throw new IllegalArgumentException("row " + index + ": label " + y + " outside [0, " + labels.size() + ")");
        }
        if (text instanceof String s) {
            return new Sample(s, null, y);
        }
        if (text instanceof scala.collection.Seq<?> seq) {
            List<?> l = scala.jdk.javaapi.CollectionConverters.asJava(seq);
            int[] ids = new int[l.size()];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = ((Number) l.get(i)).intValue();
            }
            return new Sample(null, ids, y);
        }
        throw new IllegalArgumentException("row " + index + ": column '" + textCol + "' must hold text or an array of token ids, got "
                + (text == null ? "null" : text.getClass().getSimpleName()));
    }

    private static String rootMessage(Throwable e) {
        Throwable c = e;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        return c == e ? String.valueOf(e.getMessage()) : e.getMessage() + " (cause: " + c + ")";
    }

    /** Sends each routing key to the task that consumes it. */
    static final class TaskPartitioner extends Partitioner {
        private final int size;
        private final int batchSize;
        private final int tasks;

        TaskPartitioner(int size, int batchSize, int tasks) {
            this.size = size;
            this.batchSize = batchSize;
            this.tasks = tasks;
        }

        @Override
        public int numPartitions() {
            return tasks;
        }

        @Override
        public int getPartition(Object key) {
            return GlobalBatchPlan.taskOfKey((Long) key, size, batchSize, tasks);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof TaskPartitioner p && p.size == size && p.batchSize == batchSize && p.tasks == tasks;
        }

        @Override
        public int hashCode() {
            return (size * 31 + batchSize) * 31 + tasks;
        }
    }
}
