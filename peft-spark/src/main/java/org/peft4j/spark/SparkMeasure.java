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
 * <pre>peft-spark/spark-train --measure [STEPS] [FULL_STEPS]</pre>
 */
public final class SparkMeasure {
    private SparkMeasure() {
    }

    record Row_(String name, SparkTrainer.Result r) {
    }

    public static void main(String[] args) {
        int steps = args.length > 0 ? Integer.parseInt(args[0]) : 8;
        int fullSteps = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        String lora = "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16,\"lora_dropout\":0.1,"
                + "\"target_modules\":[\"query\",\"value\"],\"modules_to_save\":[\"classifier\"]}";
        List<Row_> rows = new ArrayList<>();
        rows.add(new Row_("LoRA r8, local[1], 1 task x 2 threads", run("local[1]", 1, 2, lora, steps, 1e-3)));
        rows.add(new Row_("LoRA r8, local[2], 2 tasks x 1 thread", run("local[2]", 2, 1, lora, steps, 1e-3)));
        rows.add(new Row_("full FT, local[2], 2 tasks x 1 thread", run("local[2]", 2, 1, null, fullSteps, 2e-5)));
        System.out.println();
        System.out.println("| run | trainable values | bytes sent/task/step | bytes received (all tasks)/step | step s | compute | exchange | update |");
        System.out.println("|---|---:|---:|---:|---:|---:|---:|---:|");
        for (Row_ x : rows) {
            SparkTrainer.Result r = x.r();
            System.out.printf(Locale.ROOT, "| %s | %,d | %,d | %,d | %.3f | %.1f%% | %.1f%% | %.1f%% |%n", x.name(), r.trainableValues(),
                    r.bytesPerStepPerTask(), r.exchangedPerStep(), r.stepSeconds(), 100 * r.computeShare(),
                    100 * r.exchangeShare(), 100 * r.updateShare());
        }
        for (Row_ x : rows) {
            StringBuilder sb = new StringBuilder();
            for (double l : x.r().losses()) {
                sb.append(String.format(Locale.ROOT, " %.4f", l));
            }
            System.out.println(x.name() + " losses:" + sb + " (wall " + String.format(Locale.ROOT, "%.1f", x.r().wallSeconds()) + " s)");
        }
    }

    static SparkTrainer.Result run(String master, int tasks, int threads, String peft, int steps, double lr) {
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
                    training, "text", "label", labels, 128, tasks, null, 1, threads, 0);
            SparkTrainer.Result r = SparkTrainer.fit(df, spec);
            System.out.printf(Locale.ROOT, "%s, %d task(s), %s: %d steps, step %.3f s, %,d bytes/task/step%n", master, tasks,
                    peft == null ? "full fine-tuning" : "LoRA", r.steps(), r.stepSeconds(), r.bytesPerStepPerTask());
            return r;
        } finally {
            spark.stop();
            Replicas.clear();
        }
    }
}
