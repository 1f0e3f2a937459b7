package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.peft.TaskType;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.tokenizer.Tokenizer;
import org.peft4j.core.train.Batch;
import org.peft4j.core.train.DataLoader;
import org.peft4j.core.train.Dataset;
import org.peft4j.core.train.EvalFunction;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.LossFunction;
import org.peft4j.core.train.Metrics;
import org.peft4j.core.train.PaddingCollator;
import org.peft4j.core.train.TokenExample;
import org.peft4j.core.train.TrainResult;
import org.peft4j.core.train.Trainer;
import org.peft4j.core.train.TrainingConfig;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.OffsetDateTime;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code peft4j train CONFIG.yaml}: a fine-tuning run described by a YAML file — model, task,
 * data, the PEFT method config in PEFT's own keys (read through {@link PeftConfig}'s Jackson
 * mapping, so any installed method works) and training arguments (TrainingConfig's snake_case
 * keys). Writes {@code <output_dir>/adapter/} (a PEFT adapter folder), {@code metrics.jsonl},
 * {@code resolved_config.yaml} (every value used, seed included) and {@code eval_results.json}.
 */
final class TrainCommand implements Command {
    static final String SEQ_CLS = "sequence_classification";
    static final String CAUSAL_LM = "causal_lm";
    static final Set<String> TOP_KEYS = Set.of("model", "task", "data", "peft", "training", "output_dir", "provenance");
    static final Set<String> DATA_KEYS = Set.of("train", "eval", "text_field", "label_field", "labels", "max_length",
            "train_limit", "eval_limit");
    static final String RESOLVED = "resolved_config.yaml";

    @Override
    public String name() {
        return "train";
    }

    @Override
    public String summary() {
        return "fine-tune from a YAML config (model, data, task, PEFT method, training arguments)";
    }

    @Override
    public String usage() {
        return """
                usage: peft4j train CONFIG.yaml [--output-dir DIR] [--set KEY=VALUE ...]

                Runs the fine-tuning a YAML file describes. Example (examples/configs/imdb-lora.yaml):

                  model: minilm                  # minilm, bge-small, or a Hugging Face folder (BERT, GPT-2, LLaMA family)
                  task: sequence_classification  # or causal_lm (decoders; data = JSONL with a text field, or .txt lines)
                  data:
                    train: imdb                  # 'imdb' = bundled train split, or a .jsonl/.csv/.tsv file
                    eval: imdb:test              # optional; evaluated after every epoch
                    text_field: text             # field names in the files (defaults text, label)
                    label_field: label
                    labels: [negative, positive] # class names (in index order) when labels are names
                    max_length: 128
                  peft:                          # the method's config in PEFT's own keys (adapter_config.json)
                    peft_type: LORA
                    r: 8
                    lora_alpha: 16
                    lora_dropout: 0.1
                    target_modules: [query, value]
                    modules_to_save: [classifier]
                  training:                      # TrainingConfig keys: epochs, max_steps, batch_size, learning_rate,
                    epochs: 1                    #   weight_decay, warmup_ratio, schedule, optimizer, seed, ...
                    batch_size: 16
                    learning_rate: 1.0e-3
                    seed: 42
                  output_dir: runs/imdb-lora     # relative paths are resolved against the current directory

                Writes OUTPUT_DIR/adapter/ (adapter_config.json + adapter_model.safetensors, loadable by PEFT),
                OUTPUT_DIR/metrics.jsonl, OUTPUT_DIR/resolved_config.yaml (every value used, seed included;
                it can be given to peft4j train again) and OUTPUT_DIR/eval_results.json.
                  --output-dir DIR   overrides output_dir
                  --set KEY=VALUE    overrides one value, KEY a dotted path, VALUE in YAML syntax; repeatable:
                                     --set training.epochs=2 --set peft.r=16 --set peft.target_modules=[query,key,value]
                """;
    }

    @Override
    public Set<String> valueOptions() {
        return Set.of("output-dir", "set");
    }

    @Override
    public void run(Args a, PrintStream out, PrintStream err) throws Exception {
        a.expectPositionals(1, "one argument: the config file (peft4j train CONFIG.yaml)");
        Path file = Path.of(a.positionals().get(0));
        if (!Files.isRegularFile(file)) {
            throw new CliException("config file " + file + " does not exist");
        }
        ObjectMapper yaml = new YAMLMapper();
        JsonNode root;
        try {
            root = yaml.readTree(file.toFile());
        } catch (IOException e) {
            throw new CliException("cannot parse " + file + " as YAML: " + firstLine(e.getMessage()));
        }
        if (root == null || !root.isObject()) {
            throw new CliException(file + " must hold a YAML mapping (model, task, data, peft, training, output_dir)");
        }
        for (String override : a.getAll("set")) {
            applyOverride((ObjectNode) root, override, yaml);
        }
        checkKeys(root, TOP_KEYS, file.toString());
        String model = text(root, "model", file + ": 'model' (minilm, bge-small or a model folder)");
        String task = root.path("task").asText(SEQ_CLS).toLowerCase(Locale.ROOT).replace('-', '_');
        if (!task.equals(SEQ_CLS) && !task.equals(CAUSAL_LM)) {
            throw new CliException(file + ": task '" + task + "' is not one of " + SEQ_CLS + ", " + CAUSAL_LM);
        }
        JsonNode data = root.path("data");
        if (!data.isObject()) {
            throw new CliException(file + ": 'data' must be a mapping with at least 'train'");
        }
        checkKeys(data, DATA_KEYS, file + ": data");
        JsonNode peftNode = root.path("peft");
        if (!peftNode.isObject()) {
            throw new CliException(file + ": 'peft' must be a mapping with the method's PEFT keys (peft_type: LORA, r: 8, ...)");
        }
        Path outDir = a.has("output-dir") ? a.getPath("output-dir")
                : Path.of(root.path("output_dir").asText("runs/" + stem(file)));
        outDir = outDir.toAbsolutePath().normalize();

        // training arguments: TrainingConfig's own keys; checkpoints off unless asked for
        ObjectNode training = root.path("training").isObject() ? ((ObjectNode) root.get("training")).deepCopy()
                : JsonFiles.mapper().createObjectNode();
        if (!root.path("training").isMissingNode() && !root.path("training").isObject()) {
            throw new CliException(file + ": 'training' must be a mapping of TrainingConfig keys");
        }
        training.put("output_dir", outDir.toString());
        if (!training.has("checkpoint_interval")) {
            training.put("checkpoint_interval", -1);
        }
        TrainingConfig cfg;
        try {
            cfg = TrainingConfig.fromJson(training);
        } catch (IllegalArgumentException e) {
            throw new CliException(file + ": training: " + e.getMessage(), e);
        }
        long seed = cfg.seed();

        PeftConfig peft = PeftConfig.fromJson(JsonFiles.mapper().writeValueAsString(peftNode), file + ": peft");
        peft.setSeed(seed);
        if (peft.baseModelNameOrPath() == null) {
            peft.setBaseModelNameOrPath(Models.baseModelId(model));
        }
        if (peft.taskType() == null) {
            peft.setTaskType(task.equals(SEQ_CLS) ? TaskType.SEQ_CLS : TaskType.CAUSAL_LM);
        }
        int maxLen = data.path("max_length").asInt(128);
        if (maxLen <= 0) {
            throw new CliException(file + ": data.max_length must be positive, got " + maxLen);
        }

        out.println("peft4j train: " + file.toAbsolutePath());
        Files.createDirectories(outDir);
        Run run = task.equals(SEQ_CLS)
                ? seqCls(model, data, peft, cfg, maxLen, out, file)
                : causalLm(model, data, peft, cfg, maxLen, out, file);

        Path adapterDir = outDir.resolve("adapter");
        run.peft.save(adapterDir);
        if (run.info != null) {
            run.info.write(adapterDir);
        }
        ObjectNode resolved = resolved(root, file, model, task, run, peft, cfg, maxLen, outDir);
        AtomicFiles.writeString(outDir.resolve(RESOLVED), yaml.writeValueAsString(resolved));
        ObjectNode results = JsonFiles.mapper().createObjectNode();
        run.result.lastEvalMetrics().forEach(results::put);
        results.put("train_loss", run.result.lastLoss());
        results.put("steps", run.result.globalStep());
        results.put("train_seconds", run.seconds);
        AtomicFiles.writeString(outDir.resolve("eval_results.json"), JsonFiles.toPrettyString(results) + "\n");

        out.printf(Locale.ROOT, "trained %d steps in %s%n", run.result.globalStep(), Fmt.duration(run.seconds));
        run.result.lastEvalMetrics().forEach((k, v) -> out.printf(Locale.ROOT, "eval %s: %.4f%n", k, v));
        out.println("adapter: " + adapterDir);
        out.println("metrics: " + outDir.resolve("metrics.jsonl"));
        out.println("resolved config: " + outDir.resolve(RESOLVED));
    }

    /** What a run produced. */
    record Run(PeftModel peft, TrainResult result, double seconds, Classification.TaskInfo info, ObjectNode dataInfo) {
    }

    private Run seqCls(String modelSpec, JsonNode data, PeftConfig peftCfg, TrainingConfig cfg, int maxLen, PrintStream out,
                       Path file) throws IOException {
        List<String> labelNames = new ArrayList<>();
        data.path("labels").forEach(x -> labelNames.add(x.asText()));
        String textField = data.path("text_field").asText("text");
        String labelField = data.path("label_field").asText("label");
        String trainSpec = text(data, "train", file + ": data.train ('imdb' or a file)");
        DataSources.Labelled train = DataSources.load(trainSpec, "train", textField, labelField, labelNames);
        DataSources.Labelled eval = data.has("eval")
                ? DataSources.load(data.get("eval").asText(), "test", textField, labelField, labelNames) : null;
        List<String> labels = train.labels();
        if (eval != null && DataSources.numClasses(eval.examples()) > labels.size()) {
            labels = Classification.defaultLabels(Math.max(labels.size(), DataSources.numClasses(eval.examples())));
        }
        var trainText = DemoCommand.limit(train.examples(), data.path("train_limit").asInt(0));
        var evalText = eval == null ? null : DemoCommand.limit(eval.examples(), data.path("eval_limit").asInt(0));

        Models.Base base = Models.requireEncoder(Models.load(modelSpec, cfg.seed()), "task " + SEQ_CLS);
        try (base) {
            Tokenizer tok = base.requireTokenizer("training");
            BertForSequenceClassification model = base.seqClsCheckpoint ? Models.loadSeqCls(base.dir, cfg.seed())
                    : BertForSequenceClassification.withNewHead(base.encoder, labels, Models.defaultPooling(base.encoder),
                    new Rng(cfg.seed()));
            if (model.config().numLabels() < labels.size()) {
                throw new CliException("the data has " + labels.size() + " classes but " + base.displayName()
                        + "'s classifier has " + model.config().numLabels());
            }
            List<Example> trainEx = Classification.encode(tok, trainText, maxLen);
            List<Example> evalEx = evalText == null ? null : Classification.encode(tok, evalText, maxLen);
            out.printf(Locale.ROOT, "model: %s, task %s, %d labels %s%n", base.displayName(), SEQ_CLS, labels.size(), labels);
            out.printf(Locale.ROOT, "data: %s (%s examples)%s, max %d tokens%n", train.source(), Fmt.count(trainEx.size()),
                    evalEx == null ? "" : ", eval " + eval.source() + " (" + Fmt.count(evalEx.size()) + ")", maxLen);
            PeftModel pm = Peft.apply(model, peftCfg);
            out.println(pm.printTrainableParameters());
            int padId = Classification.padId(tok);
            PaddingCollator<Example> collator = PaddingCollator.dynamic(padId, maxLen, true);
            EvalFunction evalFn = Metrics.classification((m, b) -> Classification.logits(model, b));
            long t0 = System.nanoTime();
            TrainResult r = train(pm, model.bert().dropoutRng(), Classification.loss(model), evalFn,
                    DataLoader.forTraining(Dataset.of(trainEx), collator, cfg),
                    evalEx == null ? null : DataLoader.forEvaluation(Dataset.of(evalEx), collator, Classification.EVAL_BATCH),
                    cfg, out);
            double seconds = Fmt.secondsSince(t0);
            ObjectNode dataInfo = dataInfo(data, train.source(), trainEx.size(), eval == null ? null : eval.source(),
                    evalEx == null ? 0 : evalEx.size(), textField, labelField, labels, maxLen);
            return new Run(pm, r, seconds, new Classification.TaskInfo(Classification.TASK, model.config().id2label(),
                    model.config().classifierPooling(), maxLen, peftCfg.baseModelNameOrPath()), dataInfo);
        }
    }

    private Run causalLm(String modelSpec, JsonNode data, PeftConfig peftCfg, TrainingConfig cfg, int maxLen, PrintStream out,
                         Path file) throws IOException {
        String textField = data.path("text_field").asText("text");
        String trainSpec = text(data, "train", file + ": data.train (a .jsonl file with a text field, or a .txt file)");
        Models.Base base = Models.requireDecoder(Models.load(modelSpec, cfg.seed()), "task " + CAUSAL_LM);
        try (base) {
            Tokenizer tok = base.requireTokenizer("training");
            int limit = Math.min(maxLen, base.decoder.maxPositions());
            List<TokenExample> trainEx = DemoCommand.limit(lmExamples(Path.of(trainSpec), textField, tok, limit),
                    data.path("train_limit").asInt(0));
            List<TokenExample> evalEx = data.has("eval") ? DemoCommand.limit(
                    lmExamples(Path.of(data.get("eval").asText()), textField, tok, limit), data.path("eval_limit").asInt(0)) : null;
            DecoderLM model = base.decoder;
            out.printf(Locale.ROOT, "model: %s, task %s; data: %s (%s sequences), max %d tokens%n", base.displayName(), CAUSAL_LM,
                    trainSpec, Fmt.count(trainEx.size()), limit);
            PeftModel pm = Peft.apply(model, peftCfg);
            out.println(pm.printTrainableParameters());
            List<Integer> eos = GenerateCommand.eosIds(model);
            int padId = tok.padId() >= 0 ? tok.padId() : eos.isEmpty() ? 0 : eos.get(0);
            PaddingCollator<TokenExample> collator = PaddingCollator.dynamic(padId, limit, true);
            LossFunction loss = (m, b) -> causalLoss(model, b);
            EvalFunction evalFn = (m, batches) -> {
                double sum = 0;
                long n = 0;
                for (Batch b : batches) {
                    long count = countTargets(b);
                    sum += causalLoss(model, b).item() * count;
                    n += count;
                }
                Map<String, Double> mm = new LinkedHashMap<>();
                mm.put("eval_loss", n == 0 ? Double.NaN : sum / n);
                mm.put("perplexity", n == 0 ? Double.NaN : Math.exp(sum / n));
                return mm;
            };
            long t0 = System.nanoTime();
            TrainResult r = train(pm, null, loss, evalFn, DataLoader.forTraining(Dataset.of(trainEx), collator, cfg),
                    evalEx == null ? null : DataLoader.forEvaluation(Dataset.of(evalEx), collator, 16), cfg, out);
            double seconds = Fmt.secondsSince(t0);
            ObjectNode dataInfo = dataInfo(data, trainSpec, trainEx.size(), evalEx == null ? null : data.get("eval").asText(),
                    evalEx == null ? 0 : evalEx.size(), textField, null, null, limit);
            return new Run(pm, r, seconds, null, dataInfo);
        }
    }

    private static TrainResult train(PeftModel pm, Rng dropout, LossFunction loss, EvalFunction evalFn,
                                     DataLoader<?> train, DataLoader<?> eval, TrainingConfig cfg, PrintStream out) {
        Trainer.Builder b = Trainer.builder(pm, pm.trainableParameters(), loss, cfg).evalFunction(evalFn).progressStream(out);
        if (dropout != null) {
            b.rng(dropout);
        }
        TrainResult r = b.build().fit(train, eval);
        pm.eval();
        return r;
    }

    /** Next-token cross-entropy: logits at positions {@code 0..T-2} against labels at {@code 1..T-1} (-100 skipped). */
    static Tensor causalLoss(DecoderLM model, Batch b) {
        Tensor logits = model.forward(b.inputIds(), b.attentionMask());          // [B, T, V]
        long t = logits.size(1);
        Tensor shifted = Ops.slice(logits, 1, 0, t - 1);                         // [B, T-1, V]
        INDArray targets = b.labels().get(NDArrayIndex.all(), NDArrayIndex.interval(1, t)).dup();  // [B, T-1]
        return Ops.crossEntropy(shifted, targets, Ops.Reduction.MEAN);
    }

    static long countTargets(Batch b) {
        INDArray l = b.labels();
        return l.get(NDArrayIndex.all(), NDArrayIndex.interval(1, l.size(1))).neq(Batch.IGNORE_INDEX).castTo(
                org.nd4j.linalg.api.buffer.DataType.INT64).sumNumber().longValue();
    }

    /** Token sequences for language modelling: one per JSONL line (its text field) or per non-blank .txt line. */
    static List<TokenExample> lmExamples(Path file, String textField, Tokenizer tok, int maxLen) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new CliException("data file " + file + " does not exist");
        }
        List<String> texts = new ArrayList<>();
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        boolean jsonl = file.getFileName().toString().endsWith(".jsonl");
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if (line.isBlank()) {
                continue;
            }
            if (jsonl) {
                JsonNode n;
                try {
                    n = JsonFiles.mapper().readTree(line);
                } catch (IOException e) {
                    throw new CliException(file + ", line " + (i + 1) + ": not JSON: " + firstLine(e.getMessage()));
                }
                if (!n.path(textField).isTextual()) {
                    throw new CliException(file + ", line " + (i + 1) + ": missing text field '" + textField + "'");
                }
                texts.add(n.get(textField).asText());
            } else {
                texts.add(line);
            }
        }
        List<TokenExample> out = new ArrayList<>();
        for (String t : texts) {
            int[] ids = tok.encode(t, maxLen, true).ids();
            if (ids.length >= 2) {
                out.add(TokenExample.causalLm(ids));
            }
        }
        if (out.isEmpty()) {
            throw new CliException("data file " + file + " has no text of at least 2 tokens");
        }
        return out;
    }

    /**
     * The data section as resolved (file paths absolute, defaults filled in) — re-readable by
     * {@code peft4j train} — with the example counts kept apart for the provenance section.
     */
    static ObjectNode dataInfo(JsonNode given, String train, int trainN, String eval, int evalN, String textField,
                               String labelField, List<String> labels, int maxLen) {
        ObjectNode d = JsonFiles.mapper().createObjectNode();
        d.put("train", resolvePath(train));
        if (eval != null) {
            d.put("eval", resolvePath(eval));
        }
        d.put("text_field", textField);
        if (labelField != null) {
            d.put("label_field", labelField);
        }
        if (labels != null) {
            ArrayNode l = d.putArray("labels");
            labels.forEach(l::add);
        }
        d.put("max_length", maxLen);
        for (String k : List.of("train_limit", "eval_limit")) {
            if (given.has(k)) {
                d.put(k, given.get(k).asInt());
            }
        }
        ObjectNode counts = JsonFiles.mapper().createObjectNode();
        counts.put("train_examples", trainN);
        if (eval != null) {
            counts.put("eval_examples", evalN);
        }
        d.set(COUNTS, counts);
        return d;
    }

    /** Where {@link #dataInfo} keeps the counts until {@link #resolved} moves them to the provenance. */
    private static final String COUNTS = "__counts";

    private static String resolvePath(String spec) {
        return spec.equals(DataSources.IMDB) || spec.startsWith(DataSources.IMDB + ":") ? spec
                : Path.of(spec).toAbsolutePath().normalize().toString();
    }

    private static ObjectNode resolved(JsonNode root, Path file, String model, String task, Run run, PeftConfig peft,
                                       TrainingConfig cfg, int maxLen, Path outDir) {
        ObjectNode r = JsonFiles.mapper().createObjectNode();
        r.put("model", Models.isBundled(model) ? model : Path.of(model).toAbsolutePath().normalize().toString());
        r.put("task", task);
        ObjectNode dataNode = run.dataInfo().deepCopy();
        JsonNode counts = dataNode.remove(COUNTS);
        r.set("data", dataNode);
        ObjectNode p = JsonFiles.mapper().valueToTree(new java.util.TreeMap<>(peft.toMap()));
        p.remove("peft_version");
        p.remove("inference_mode");
        r.set("peft", p);
        r.set("training", cfg.toJson());
        r.put("output_dir", outDir.toString());
        ObjectNode prov = r.putObject("provenance");
        prov.put("config_file", file.toAbsolutePath().normalize().toString());
        prov.put("seed", cfg.seed());
        prov.put("peft4j", PeftModel.PEFT4J_VERSION);
        prov.put("java", System.getProperty("java.version"));
        prov.put("started_from", System.getProperty("user.dir"));
        prov.put("finished", OffsetDateTime.now().truncatedTo(ChronoUnit.SECONDS).toString());
        prov.setAll((ObjectNode) counts);
        prov.put("steps", run.result().globalStep());
        prov.put("train_seconds", Math.round(run.seconds() * 10) / 10.0);
        return r;
    }

    /** {@code a.b.c=value}: sets {@code root.a.b.c} to the YAML value, creating mappings on the way. */
    static void applyOverride(ObjectNode root, String override, ObjectMapper yaml) {
        int eq = override.indexOf('=');
        if (eq <= 0) {
            throw new CliException("--set needs KEY=VALUE (e.g. training.epochs=2), got '" + override + "'");
        }
        String[] path = override.substring(0, eq).strip().split("\\.");
        JsonNode value;
        try {
            String v = override.substring(eq + 1);
            value = v.isEmpty() ? JsonFiles.mapper().getNodeFactory().textNode("") : yaml.readTree(v);
        } catch (IOException e) {
            throw new CliException("--set " + override + ": the value is not valid YAML: " + firstLine(e.getMessage()));
        }
        ObjectNode node = root;
        for (int i = 0; i < path.length - 1; i++) {
            JsonNode child = node.get(path[i]);
            if (child == null || child.isNull()) {
                child = node.putObject(path[i]);
            } else if (!child.isObject()) {
                throw new CliException("--set " + override + ": '" + path[i] + "' is not a mapping");
            }
            node = (ObjectNode) child;
        }
        node.set(path[path.length - 1], value);
    }

    private static void checkKeys(JsonNode node, Set<String> known, String where) {
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!known.contains(k)) {
                throw new CliException(where + ": unknown key '" + k + "' (known: " + String.join(", ", new java.util.TreeSet<>(known)) + ")");
            }
        }
    }

    private static String text(JsonNode node, String key, String what) {
        JsonNode v = node.get(key);
        if (v == null || v.isNull() || !v.isValueNode() || v.asText().isBlank()) {
            throw new CliException("missing " + what);
        }
        return v.asText();
    }

    private static String stem(Path file) {
        String n = file.getFileName().toString();
        int dot = n.lastIndexOf('.');
        return dot > 0 ? n.substring(0, dot) : n;
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
