package org.peft4j.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.peft4j.core.data.Imdb;
import org.peft4j.core.data.TextExample;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.train.TrainingConfig;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * {@code spark-submit --class org.peft4j.spark.SparkTrainMain peft-spark.jar CONFIG.yaml}: the
 * {@code peft4j train} YAML (model, task, data, peft, training, output_dir) plus a {@code spark:}
 * section, trained data-parallel. {@code training.batch_size} is the global batch.
 *
 * <pre>
 * spark:
 *   master: local[2]        # only when not run through spark-submit
 *   num_tasks: 2            # replicas; one free task slot each
 *   checkpoint_dir: hdfs://nn/runs/imdb/checkpoints   # default OUTPUT_DIR/checkpoints
 *   sync_every: 1           # >1: local steps with periodic averaging
 *   threads_per_task: 0     # ND4J threads per replica (0 = default)
 *   max_restarts: 2         # resubmissions after a failed step (each resumes from the last checkpoint)
 *   exchange: aggregate     # or barrier (one stage, allGather per step; needed for sync_every > 1)
 *   nf4: false              # 4-bit NF4 base (QLoRA)
 *   pooling: mean
 * </pre>
 *
 * Data: {@code data.train} is {@code imdb} (the bundled split) or any file Spark reads
 * ({@code .parquet}, {@code .json}/{@code .jsonl}, {@code .csv} with a header), local or on a
 * Hadoop file system. Writes {@code OUTPUT_DIR/adapter/} (an ordinary PEFT folder, plus
 * {@code peft4j_task.json} so {@code peft4j eval/predict} can open it) and
 * {@code OUTPUT_DIR/spark_metrics.json} (loss curve, bytes per step, time shares).
 */
public final class SparkTrainMain {
    static final Set<String> TOP = Set.of("model", "task", "data", "peft", "training", "output_dir", "spark", "provenance");

    private SparkTrainMain() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1 || args[0].startsWith("-")) {
            System.err.println("usage: spark-submit --class org.peft4j.spark.SparkTrainMain peft-spark.jar CONFIG.yaml");
            System.exit(2);
        }
        JsonNode root = new YAMLMapper().readTree(new File(args[0]));
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException(args[0] + " must hold a YAML mapping");
        }
        for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!TOP.contains(k)) {
                throw new IllegalArgumentException(args[0] + ": unknown key '" + k + "' (known: " + new java.util.TreeSet<>(TOP) + ")");
            }
        }
        String task = root.path("task").asText("sequence_classification");
        if (!task.equals("sequence_classification")) {
            throw new IllegalArgumentException(args[0] + ": task '" + task + "': peft-spark trains sequence_classification");
        }
        JsonNode data = root.path("data");
        JsonNode sp = root.path("spark");
        String out = root.path("output_dir").asText("runs/" + new File(args[0]).getName().replaceAll("\\.ya?ml$", ""));
        SparkSession.Builder b = SparkSession.builder().appName("peft4j spark-train " + args[0]);
        if (sp.has("master")) {
            b.master(sp.get("master").asText());
        }
        SparkSession spark = b.getOrCreate();
        try {
            List<String> labels = new ArrayList<>();
            data.path("labels").forEach(x -> labels.add(x.asText()));
            String text = data.path("text_field").asText("text");
            String label = data.path("label_field").asText("label");
            Dataset<Row> df = read(spark, data.path("train").asText("imdb"), text, label, data.path("train_limit").asInt(0), labels);
            if (labels.isEmpty()) {
                labels.addAll(List.of("LABEL_0", "LABEL_1"));
            }
            ObjectNode training = root.path("training").isObject() ? ((ObjectNode) root.get("training")).deepCopy()
                    : JsonFiles.mapper().createObjectNode();
            training.remove("output_dir");
            TrainingConfig cfg = TrainingConfig.fromJson(training);
            int maxLen = data.path("max_length").asInt(128);
            String ckpt = sp.path("checkpoint_dir").asText(out.replaceAll("/+$", "") + "/checkpoints");
            ModelSource src = ModelSources.classifier(root.path("model").asText("minilm"), labels, sp.path("pooling").asText("mean"),
                    sp.path("nf4").asBoolean(false), null, cfg.seed());
            SparkTrainSpec spec = new SparkTrainSpec(src, JsonFiles.mapper().writeValueAsString(root.path("peft")),
                    cfg.toJson().toString(), text, label, labels, maxLen, sp.path("num_tasks").asInt(2), ckpt,
                    sp.path("sync_every").asInt(1), sp.path("threads_per_task").asInt(0), sp.path("max_restarts").asInt(2),
                    sp.path("exchange").asText(SparkTrainSpec.AGGREGATE));
            SparkTrainer.Result r = SparkTrainer.fit(df, spec);
            String adapter = out.replaceAll("/+$", "") + "/adapter";
            Map<String, byte[]> files = new TreeMap<>(r.adapterFiles());
            ObjectNode info = JsonFiles.mapper().createObjectNode();
            info.put("task", "sequence_classification");
            labels.forEach(info.putArray("labels")::add);
            info.put("pooling", sp.path("pooling").asText("mean").toLowerCase(Locale.ROOT));
            info.put("max_length", maxLen);
            info.put("base_model", root.path("model").asText("minilm"));
            files.put("peft4j_task.json", (JsonFiles.toPrettyString(info) + "\n").getBytes(StandardCharsets.UTF_8));
            HadoopCheckpoints.writeFolder(adapter, files);
            HadoopCheckpoints.writeFolder(out, Map.of("spark_metrics.json",
                    (JsonFiles.toPrettyString(metrics(r, spec)) + "\n").getBytes(StandardCharsets.UTF_8)));
            System.out.printf(Locale.ROOT, "trained %d steps on %d tasks in %.1f s (%d attempt(s)); final loss %.4f%n", r.steps(),
                    spec.numTasks(), r.wallSeconds(), r.attempts(), r.losses()[r.losses().length - 1]);
            System.out.printf(Locale.ROOT, "exchange: %,d bytes sent per task per step; step %.3f s (compute %.0f%%, exchange %.0f%%, update %.0f%%)%n",
                    r.bytesPerStepPerTask(), r.stepSeconds(), 100 * r.computeShare(), 100 * r.exchangeShare(), 100 * r.updateShare());
            System.out.println("adapter: " + adapter);
        } finally {
            spark.stop();
        }
    }

    static ObjectNode metrics(SparkTrainer.Result r, SparkTrainSpec spec) {
        ObjectNode m = JsonFiles.mapper().createObjectNode();
        m.put("num_tasks", spec.numTasks());
        m.put("sync_every", spec.syncEvery());
        m.put("exchange", spec.exchange());
        m.put("steps", r.steps());
        m.put("attempts", r.attempts());
        m.put("trainable_values", r.trainableValues());
        m.put("bytes_sent_per_task_per_exchange", r.bytesPerStepPerTask());
        m.put("bytes_received_all_tasks_per_exchange", r.exchangedPerStep());
        m.put("step_seconds", r.stepSeconds());
        m.put("compute_share", r.computeShare());
        m.put("exchange_share", r.exchangeShare());
        m.put("gather_share", r.gatherShare());
        m.put("update_share", r.updateShare());
        m.put("checkpoint_seconds", r.checkpointSeconds());
        m.put("checkpoint_bytes", r.checkpointBytes());
        m.put("wall_seconds", r.wallSeconds());
        var l = m.putArray("losses");
        for (double v : r.losses()) {
            l.add(v);
        }
        return m;
    }

    /** The bundled IMDB train split, or a file Spark reads by its extension. */
    static Dataset<Row> read(SparkSession spark, String train, String text, String label, int limit, List<String> labels) {
        Dataset<Row> df;
        if (train.equals("imdb")) {
            if (labels.isEmpty()) {
                labels.addAll(Imdb.LABELS);
            }
            List<TextExample> ex = Imdb.bundledSplit().train();
            List<Row> rows = new ArrayList<>();
            for (TextExample e : limit > 0 ? ex.subList(0, Math.min(limit, ex.size())) : ex) {
                rows.add(RowFactory.create(e.text(), e.label()));
            }
            StructType schema = new StructType().add(text, DataTypes.StringType, false).add(label, DataTypes.IntegerType, false);
            return spark.createDataFrame(rows, schema);
        }
        String lower = train.toLowerCase(Locale.ROOT);
        if (lower.endsWith(".parquet")) {
            df = spark.read().parquet(train);
        } else if (lower.endsWith(".json") || lower.endsWith(".jsonl")) {
            df = spark.read().json(train);
        } else if (lower.endsWith(".csv")) {
            df = spark.read().option("header", "true").option("inferSchema", "true").csv(train);
        } else {
            throw new IllegalArgumentException("data.train '" + train + "': use imdb, or a .parquet, .json/.jsonl or .csv file");
        }
        return limit > 0 ? df.limit(limit) : df;
    }
}
