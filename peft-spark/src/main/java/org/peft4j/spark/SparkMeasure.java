package org.peft4j.spark;

import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The figures of peft-spark/README.md: MiniLM-L6 on the bundled IMDB reviews, global batch 16,
 * 128 tokens — bytes exchanged per step (LoRA r 8 vs full fine-tuning, from the trainer's own
 * counters), step time with 1 task × 2 ND4J threads ({@code local[1]}) vs 2 tasks × 1 thread
 * ({@code local[2]}), and the share of a step spent outside forward/backward.
 *
 * <pre>peft-spark/spark-train --measure [STEPS] [FULL_STEPS]
 * peft-spark/spark-train --measure --exchange [ITERATIONS]</pre>
 *
 * The second form times the two exchange mechanisms alone (no model) in local[2] with the LoRA
 * and the full-fine-tuning payload: one barrier {@code allGather} of the Base64 gradient per
 * step, against one Spark job per step that broadcasts the adapter and {@code treeAggregate}s
 * the gradients back to the driver.
 */
public final class SparkMeasure {
    private SparkMeasure() {
    }

    record Row_(String name, SparkTrainer.Result r) {
    }

    public static void main(String[] args) {
        if (args.length > 0 && args[0].equals("--exchange")) {
            exchange(args.length > 1 ? Integer.parseInt(args[1]) : 20);
            return;
        }
        int steps = args.length > 0 ? Integer.parseInt(args[0]) : 8;
        int fullSteps = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        String lora = "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16,\"lora_dropout\":0.1,"
                + "\"target_modules\":[\"query\",\"value\"],\"modules_to_save\":[\"classifier\"]}";
        List<Row_> rows = new ArrayList<>();
        String agg = SparkTrainSpec.AGGREGATE;
        String bar = SparkTrainSpec.BARRIER;
        rows.add(new Row_("LoRA r8, aggregate, local[1], 1 task x 2 threads", run("local[1]", 1, 2, lora, steps, 1e-3, agg)));
        rows.add(new Row_("LoRA r8, aggregate, local[2], 2 tasks x 1 thread", run("local[2]", 2, 1, lora, steps, 1e-3, agg)));
        rows.add(new Row_("LoRA r8, barrier, local[2], 2 tasks x 1 thread", run("local[2]", 2, 1, lora, steps, 1e-3, bar)));
        rows.add(new Row_("full FT, aggregate, local[2], 2 tasks x 1 thread", run("local[2]", 2, 1, null, fullSteps, 2e-5, agg)));
        rows.add(new Row_("full FT, barrier, local[2], 2 tasks x 1 thread", run("local[2]", 2, 1, null, fullSteps, 2e-5, bar)));
        System.out.println();
        System.out.println("| run | trainable values | bytes sent/task/step | bytes moved (all tasks, both ways)/step | step s | compute | exchange (of which gather/job) | update |");
        System.out.println("|---|---:|---:|---:|---:|---:|---:|---:|");
        for (Row_ x : rows) {
            SparkTrainer.Result r = x.r();
            System.out.printf(Locale.ROOT, "| %s | %,d | %,d | %,d | %.3f | %.1f%% | %.1f%% (%.1f%%) | %.1f%% |%n", x.name(), r.trainableValues(),
                    r.bytesPerStepPerTask(), r.exchangedPerStep(), r.stepSeconds(), 100 * r.computeShare(),
                    100 * r.exchangeShare(), 100 * r.gatherShare(), 100 * r.updateShare());
        }
        for (Row_ x : rows) {
            StringBuilder sb = new StringBuilder();
            for (double l : x.r().losses()) {
                sb.append(String.format(Locale.ROOT, " %.4f", l));
            }
            System.out.println(x.name() + " losses:" + sb + " (wall " + String.format(Locale.ROOT, "%.1f", x.r().wallSeconds()) + " s)");
        }
    }

    static SparkTrainer.Result run(String master, int tasks, int threads, String peft, int steps, double lr, String exchange) {
        Replicas.clear();
        SparkSession spark = SparkSession.builder().master(master).appName("peft-spark measure")
                .config("spark.ui.enabled", "false")
                .config("spark.rpc.message.maxSize", "1024")   // full fine-tuning: ~120 MB messages
                .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
                .getOrCreate();
        try {
            List<String> labels = new ArrayList<>();
            Dataset<Row> df = SparkTrainMain.read(spark, "imdb", "text", "label", 16 * steps, labels);
            String training = "{\"max_steps\":" + steps + ",\"batch_size\":16,\"learning_rate\":" + lr + ",\"seed\":42}";
            SparkTrainSpec spec = new SparkTrainSpec(ModelSources.classifier("minilm", labels, "mean", false, null, 42), peft,
                    training, "text", "label", labels, 128, tasks, null, 1, threads, 0, exchange);
            SparkTrainer.Result r = SparkTrainer.fit(df, spec);
            System.out.printf(Locale.ROOT, "%s, %d task(s), %s: %d steps, step %.3f s, %,d bytes/task/step%n", master, tasks,
                    peft == null ? "full fine-tuning" : "LoRA", r.steps(), r.stepSeconds(), r.bytesPerStepPerTask());
            return r;
        } finally {
            spark.stop();
            Replicas.clear();
        }
    }

    static void exchange(int iters) {
        SparkSession spark = SparkSession.builder().master("local[2]").appName("peft-spark exchange")
                .config("spark.ui.enabled", "false").config("spark.rpc.message.maxSize", "1024")
                .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1").getOrCreate();
        try {
            org.apache.spark.api.java.JavaSparkContext jsc = org.apache.spark.api.java.JavaSparkContext.fromSparkContext(spark.sparkContext());
            org.apache.spark.api.java.JavaRDD<Integer> two = jsc.parallelize(List.of(0, 1), 2).cache();
            two.count();
            System.out.println("| payload | floats | barrier allGather, ms/step | treeAggregate job + broadcast, ms/step |");
            System.out.println("|---|---:|---:|---:|");
            for (int values : new int[]{74_498, 22_566_146}) {
                int n = values > 1_000_000 ? Math.max(2, iters / 10) : iters;
                String msg = GradientExchange.encode("0", new float[values]);
                scala.reflect.ClassTag<Double> tag = scala.reflect.ClassTag$.MODULE$.apply(Double.class);
                List<Double> per = new org.apache.spark.api.java.JavaRDD<>(two.rdd().barrier().mapPartitions(new GatherLoop(msg, n), false, tag), tag)
                        .collect();
                double gather = per.stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN);
                // warm-up job, then n timed steps
                double tree = 0;
                for (int i = -1; i < n; i++) {
                    long t0 = System.nanoTime();
                    org.apache.spark.broadcast.Broadcast<float[]> w = jsc.broadcast(new float[values]);
                    float[] g = two.treeAggregate(new float[0], (acc, x) -> {
                        float[] v = w.value();
                        float[] out = acc.length == 0 ? new float[v.length] : acc;
                        for (int k = 0; k < v.length; k++) {
                            out[k] += v[k] + x;
                        }
                        return out;
                    }, (a, b) -> {
                        if (a.length == 0) {
                            return b;
                        }
                        if (b.length == 0) {
                            return a;
                        }
                        for (int k = 0; k < a.length; k++) {
                            a[k] += b[k];
                        }
                        return a;
                    }, 2);
                    w.destroy();
                    if (g.length != values) {
                        throw new IllegalStateException("treeAggregate returned " + g.length + " values");
                    }
                    if (i >= 0) {
                        tree += (System.nanoTime() - t0) / 1e6;
                    }
                }
                System.out.printf(Locale.ROOT, "| %s | %,d | %.1f | %.1f |%n", values > 1_000_000 ? "full FT" : "LoRA r8", values,
                        gather, tree / n);
            }
        } finally {
            spark.stop();
        }
    }

    /** n allGathers of one message in a barrier task; returns ms per call (after 2 warm-up calls). */
    static final class GatherLoop extends scala.runtime.AbstractFunction1<scala.collection.Iterator<Integer>, scala.collection.Iterator<Double>>
            implements java.io.Serializable {
        private final String msg;
        private final int n;

        GatherLoop(String msg, int n) {
            this.msg = msg;
            this.n = n;
        }

        @Override
        public scala.collection.Iterator<Double> apply(scala.collection.Iterator<Integer> it) {
            org.apache.spark.BarrierTaskContext ctx = org.apache.spark.BarrierTaskContext.get();
            for (int i = 0; i < 2; i++) {
                ctx.allGather(msg);
            }
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                if (ctx.allGather(msg).length != 2) {
                    throw new IllegalStateException("allGather lost a message");
                }
            }
            double ms = (System.nanoTime() - t0) / 1e6 / n;
            return scala.jdk.javaapi.CollectionConverters.asScala(List.of(ms).iterator());
        }
    }
}
