package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.data.Imdb;
import org.peft4j.core.data.TextExample;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.peft.TaskType;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tokenizer.Tokenizer;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.TrainResult;
import org.peft4j.core.train.TrainingConfig;
import org.peft4j.distill.DistillationConfig;
import org.peft4j.distill.Distiller;
import org.peft4j.distill.FewShot;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.OffsetDateTime;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code peft4j distill CONFIG.yaml}: a teacher classifier (an adapter folder, or a
 * {@code peft4j train} recipe run first when its adapter is not there yet) distilled into a student
 * (a full model or a PEFT model) with {@link Distiller}; every combination of {@code distill.k},
 * {@code distill.methods} and {@code student.modes} is one run with its own folder, and
 * {@code summary.json} lists them with the teacher's accuracy and speed next to each student's.
 */
final class DistillCommand implements Command {
    static final Set<String> TOP_KEYS = Set.of("teacher", "student", "data", "distill", "training", "output_dir", "provenance");
    static final Set<String> TEACHER_KEYS = Set.of("model", "adapter", "recipe", "overrides");
    static final Set<String> STUDENT_KEYS = Set.of("model", "peft", "modes", "full_learning_rate");
    static final Set<String> DISTILL_KEYS = Set.of("methods", "k", "pool", "temperature", "alpha", "layers", "hidden_loss",
            "hidden_weight", "attention_weight", "seed");
    static final String LABELS_ONLY = "labels_only";
    static final String KD = "kd";
    static final String MODE_PEFT = "peft";
    static final String MODE_FULL = "full";
    /** {@code k: all}: every training example keeps its gold label. */
    static final int ALL = -1;
    /** Examples predicted before each timed pass, so teacher and student are timed alike (warm). */
    static final int WARMUP = 16;

    @Override
    public String name() {
        return "distill";
    }

    @Override
    public String summary() {
        return "distil a teacher classifier into a student (few-shot labels + soft targets), from a YAML config";
    }

    @Override
    public String usage() {
        return """
                usage: peft4j distill CONFIG.yaml [--output-dir DIR] [--set KEY=VALUE ...]

                Example (examples/configs/imdb-distill.yaml):

                  teacher:
                    recipe: examples/configs/imdb-teacher.yaml  # a peft4j train recipe, run first unless its
                                                 #   OUTPUT_DIR/adapter exists; or: model: + adapter: DIR
                    overrides: []                # KEY=VALUE for the recipe, as --set in peft4j train
                  student:
                    model: minilm
                    modes: [peft, full]          # a PEFT student (the peft section) and/or the full model
                    full_learning_rate: 5.0e-5   # the full student's learning rate (default training's)
                    peft: {peft_type: LORA, r: 8, lora_alpha: 16, target_modules: [query, value],
                           modules_to_save: [classifier]}
                  data:                          # as in peft4j train (train, eval, max_length, train_limit, ...)
                    train: imdb
                    eval: imdb:test
                  distill:
                    methods: [labels_only, kd]   # labels_only: the k gold labels alone; kd: plus soft targets
                    k: [16, 64, 256, all]        # gold labels kept (class-balanced); all = every one,
                                                 #   0 = none (kd on soft targets alone)
                    pool: rest                   # unlabelled texts: rest (of data.train), none, or a data spec
                                                 #   (imdb:full = the 50,000 reviews of peft4j data fetch imdb)
                    temperature: 2.0
                    alpha: 0.5                   # weight of the hard-label CE on labelled examples
                    layers: []                   # [[teacher, student], ...] hidden_states to match (0 = embeddings)
                    hidden_loss: none            # none, mse or cosine
                    hidden_weight: 1.0
                    attention_weight: 0.0        # MiniLM attention KL on the last layers (0 = off)
                  training: {epochs: 3, batch_size: 16, learning_rate: 1.0e-3, seed: 42}
                  output_dir: runs/imdb-distill

                Writes OUTPUT_DIR/k<K>-<method>-<mode>/ (student/ — an adapter folder or the full model —,
                metrics.jsonl, eval_results.json), OUTPUT_DIR/teacher_cache-*.safetensors (the teacher's
                logits, reused by later runs), OUTPUT_DIR/summary.json and OUTPUT_DIR/resolved_config.yaml.
                  --output-dir DIR   overrides output_dir
                  --set KEY=VALUE    overrides one value (dotted path, YAML value): --set distill.k=[64]
                """;
    }

    @Override
    public Set<String> valueOptions() {
        return Set.of("output-dir", "set");
    }

    @Override
    public void run(Args a, PrintStream out, PrintStream err) throws Exception {
        a.expectPositionals(1, "one argument: the config file (peft4j distill CONFIG.yaml)");
        Path file = Path.of(a.positionals().get(0));
        if (!Files.isRegularFile(file)) {
            throw new CliException("config file " + file + " does not exist");
        }
        ObjectMapper yaml = TrainRecipe.yaml();
        JsonNode parsed;
        try {
            parsed = YamlTree.read(file, TrainRecipe.yamlFactory()); // aliases resolved, expansion bounded
        } catch (IOException e) {
            throw new CliException("cannot parse " + file + " as YAML: " + TrainRecipe.firstLine(e.getMessage()));
        }
        if (parsed == null || !parsed.isObject()) {
            throw new CliException(file + " must hold a YAML mapping (teacher, student, data, distill, training, output_dir)");
        }
        ObjectNode root = (ObjectNode) parsed;
        for (String o : a.getAll("set")) {
            TrainRecipe.applyOverride(root, o, yaml);
        }
        TrainRecipe.checkKeys(root, TOP_KEYS, file, "");
        JsonNode teacherNode = mapping(root, "teacher", file, true);
        JsonNode studentNode = mapping(root, "student", file, true);
        JsonNode data = mapping(root, "data", file, true);
        JsonNode distill = mapping(root, "distill", file, false);
        TrainRecipe.checkKeys(teacherNode, TEACHER_KEYS, file, "teacher");
        TrainRecipe.checkKeys(studentNode, STUDENT_KEYS, file, "student");
        TrainRecipe.checkKeys(data, TrainRecipe.DATA_KEYS, file, "data");
        TrainRecipe.checkKeys(distill, DISTILL_KEYS, file, "distill");
        Path typedOut = a.has("output-dir") ? a.getPath("output-dir") : null;
        if (typedOut == null && a.getAll("set").stream().anyMatch(o -> o.strip().startsWith("output_dir="))
                && root.path("output_dir").isTextual()) {
            typedOut = Path.of(root.get("output_dir").textValue());   // --set output_dir=DIR, as --output-dir DIR
        }
        Path outDir = TrainRecipe.outputDir(root, file, typedOut);
        TrainingConfig training = trainingConfig(root, outDir, file);
        long seed = distill.has("seed") ? TrainRecipe.integer(distill, "seed", 0, file, "distill") : training.seed();
        int maxLen = TrainRecipe.integer(data, "max_length", 128, file, "data");
        for (String k : List.of("train_limit", "eval_limit")) {
            TrainRecipe.integer(data, k, 0, file, "data");
        }
        TrainRecipe.number(studentNode, "full_learning_rate", 0, file, "student");
        DistillationConfig dcfg = distillationConfig(distill, file);
        List<Integer> ks = intList(distill.path("k"), List.of(ALL), file + ": distill.k");
        List<String> methods = textList(distill.path("methods"), List.of(KD), Set.of(LABELS_ONLY, KD), file + ": distill.methods");
        String pool = distill.path("pool").asText("rest");
        String studentSpec = studentNode.path("model").asText("");
        if (studentSpec.isBlank()) {
            throw new CliException("missing " + file + ": student.model (minilm, bge-small or a model folder)");
        }
        JsonNode peftNode = studentNode.path("peft");
        List<String> modes = textList(studentNode.path("modes"), List.of(peftNode.isObject() ? MODE_PEFT : MODE_FULL),
                Set.of(MODE_PEFT, MODE_FULL), file + ": student.modes");
        if (modes.contains(MODE_PEFT) && !peftNode.isObject()) {
            throw new CliException(file + ": student.modes has 'peft' but student.peft is not a mapping of PEFT keys");
        }
        if (peftNode.isObject()) {
            PeftConfig.fromJsonStrict(peftNode, file.toString(), "student.peft"); // checked before anything runs
        }
        out.println("peft4j distill: " + file.toAbsolutePath());

        // ---- the data: read (and so checked) before the teacher trains or anything is written ----
        List<String> labelNames = new ArrayList<>();
        data.path("labels").forEach(x -> labelNames.add(x.asText()));
        String textField = data.path("text_field").asText("text");
        String labelField = data.path("label_field").asText("label");
        DataSources.Labelled train = DataSources.load(data.path("train").asText("imdb"), "train", textField, labelField, labelNames);
        DataSources.Labelled eval = data.has("eval")
                ? DataSources.load(data.get("eval").asText(), "test", textField, labelField, labelNames) : null;
        List<TextExample> trainText = DemoCommand.limit(train.examples(), TrainRecipe.integer(data, "train_limit", 0, file, "data"));
        List<TextExample> evalText = eval == null ? List.of() : DemoCommand.limit(eval.examples(), TrainRecipe.integer(data, "eval_limit", 0, file, "data"));
        if (evalText.isEmpty()) {
            throw new CliException(file + ": data.eval is needed: the runs are compared by their test accuracy");
        }
        List<String> labels = train.labels();

        // ---- the teacher ---------------------------------------------------------------------
        String teacherSpec;
        Path teacherAdapter;
        if (teacherNode.has("recipe")) {
            List<String> overrides = new ArrayList<>();
            teacherNode.path("overrides").forEach(x -> overrides.add(x.asText()));
            // teacher.overrides typed on this command line (--set) may name an output folder anywhere;
            // those read from the config file are held to the recipe's rule
            boolean typed = a.getAll("set").stream().anyMatch(o -> o.strip().startsWith("teacher"));
            TrainRecipe tr = TrainRecipe.read(Path.of(teacherNode.get("recipe").asText()), overrides, null, false, typed);
            teacherSpec = tr.model();
            teacherAdapter = tr.outputDir().resolve("adapter");
            if (Files.isDirectory(teacherAdapter)) {
                out.println("teacher: reusing " + teacherAdapter);
            } else {
                out.println("teacher: fine-tuning " + tr.model() + " from " + tr.file());
                TrainCommand.trainAndWrite(tr, out);
            }
        } else {
            teacherSpec = teacherNode.path("model").asText("");
            if (teacherSpec.isBlank()) {
                throw new CliException("missing " + file + ": teacher.model (or teacher.recipe)");
            }
            teacherAdapter = teacherNode.hasNonNull("adapter") ? Path.of(teacherNode.get("adapter").asText()).toAbsolutePath() : null;
        }

        ArrayNode summary = JsonFiles.mapper().createArrayNode();
        try (Classification.Classifier teacher = Classification.open(teacherSpec, teacherAdapter, maxLen, seed)) {
            Tokenizer tok = teacher.tokenizer();
            int padId = Classification.padId(tok);
            List<Example> trainEx = Classification.encode(tok, trainText, maxLen);
            List<Example> evalEx = Classification.encode(tok, evalText, maxLen);
            List<Example> poolEx = extraPool(pool, tok, maxLen, textField, labelField, labelNames, file, trainText, evalText);
            out.printf(Locale.ROOT, "teacher: %s%s, %d labels; data: %s (%s examples), eval %s (%s)%n",
                    teacher.base.displayName(), teacherAdapter == null ? "" : " + " + teacherAdapter, teacher.labels.size(),
                    train.source(), Fmt.count(trainEx.size()), eval.source(), Fmt.count(evalEx.size()));
            if (teacher.labels.size() != labels.size()) {
                throw new CliException("the teacher classifies " + teacher.labels.size() + " labels " + teacher.labels
                        + " but the data has " + labels.size() + " " + labels);
            }
            Files.createDirectories(outDir);   // everything read and checked: the first write
            teacher.predictLogits(evalEx.subList(0, Math.min(WARMUP, evalEx.size())));   // JIT and buffers warm before timing
            long t0 = System.nanoTime();
            double teacherAcc = Classification.accuracy(teacher.predictLogits(evalEx), evalEx);
            double teacherSec = Fmt.secondsSince(t0);
            out.printf(Locale.ROOT, "teacher accuracy %.4f on %d eval examples (%.2fs)%n", teacherAcc, evalEx.size(), teacherSec);
            String teacherKey = teacherSpec + "|" + teacherAdapter + "|" + maxLen;

            for (int k : ks) {
                for (String method : methods) {
                    for (String mode : modes) {
                        String runName = "k" + (k == ALL ? "all" : String.valueOf(k)) + "-" + method + "-" + mode;
                        Path runDir = outDir.resolve(runName);
                        out.println("== " + runName);
                        ObjectNode r = runOne(k, method, mode, runDir, trainEx, poolEx, evalEx, pool, padId, maxLen, seed,
                                runTraining(training, studentNode, mode, runDir), dcfg, studentSpec, peftNode, tok, labels,
                                teacher, teacherKey, outDir, out);
                        r.put("teacher_accuracy", teacherAcc);
                        r.put("accuracy_ratio", r.get("accuracy").asDouble() / teacherAcc);
                        r.put("teacher_eval_seconds", teacherSec);
                        r.put("speedup", teacherSec / r.get("eval_seconds").asDouble());
                        AtomicFiles.writeString(runDir.resolve("eval_results.json"), JsonFiles.toPrettyString(r) + "\n");
                        out.printf(Locale.ROOT, "%s: accuracy %.4f (teacher %.4f, ratio %.3f), eval %.2fs vs teacher %.2fs (%.2fx)%n",
                                runName, r.get("accuracy").asDouble(), teacherAcc, r.get("accuracy_ratio").asDouble(),
                                r.get("eval_seconds").asDouble(), teacherSec, r.get("speedup").asDouble());
                        summary.add(r);
                    }
                }
            }
        }
        AtomicFiles.writeString(outDir.resolve("summary.json"), JsonFiles.toPrettyString(summary) + "\n");
        ObjectNode resolved = resolved(root, outDir, training, dcfg, ks, methods, modes, pool, seed, maxLen, teacherSpec,
                teacherAdapter, file);
        AtomicFiles.writeString(outDir.resolve(TrainCommand.RESOLVED), yaml.writeValueAsString(resolved));
        out.println("summary: " + outDir.resolve("summary.json"));
        out.println("resolved config: " + outDir.resolve(TrainCommand.RESOLVED));
    }

    /** One student: built fresh, trained by {@code method}, saved, and scored on the eval examples. */
    private static ObjectNode runOne(int k, String method, String mode, Path runDir, List<Example> trainEx, List<Example> poolEx,
                                     List<Example> evalEx, String pool, int padId, int maxLen, long seed, TrainingConfig cfg,
                                     DistillationConfig dcfg, String studentSpec, JsonNode peftNode, Tokenizer teacherTok,
                                     List<String> labels, Classification.Classifier teacher, String teacherKey, Path outDir,
                                     PrintStream out) throws IOException {
        Files.createDirectories(runDir);
        int kk = k == ALL ? trainEx.size() : Math.min(k, trainEx.size());
        if (kk == 0 && method.equals(LABELS_ONLY)) {
            throw new CliException("distill.k = 0 leaves " + LABELS_ONLY + " no gold label to train on");
        }
        try (Models.Base sb = Models.requireEncoder(Models.load(studentSpec, seed), "peft4j distill")) {
            checkSameTokenizer(teacherTok, sb.requireTokenizer("distillation"), studentSpec);
            BertForSequenceClassification model = BertForSequenceClassification.withNewHead(sb.encoder, labels,
                    Models.defaultPooling(sb.encoder), new Rng(seed));
            Module root = model;
            PeftModel pm = null;
            if (mode.equals(MODE_PEFT)) {
                PeftConfig pc = PeftConfig.fromJson(JsonFiles.mapper().writeValueAsString(peftNode), "student.peft");
                pc.setSeed(seed);
                if (pc.baseModelNameOrPath() == null) {
                    pc.setBaseModelNameOrPath(Models.baseModelId(studentSpec));
                }
                if (pc.taskType() == null) {
                    pc.setTaskType(TaskType.SEQ_CLS);
                }
                pm = Peft.apply(model, pc);
                root = pm;
            }
            Map<String, Parameter> trainable = pm != null ? pm.trainableParameters() : model.namedTrainableParameters();
            List<Example> used;
            TrainResult result;
            long t0 = System.nanoTime();
            if (method.equals(LABELS_ONLY)) {
                used = FewShot.labelledOnly(trainEx, kk, seed);
                out.printf(Locale.ROOT, "student %s (%s): %d gold labels alone%n", sb.displayName(), mode, used.size());
                result = Classification.fit(root, model, trainable, used, padId, maxLen, cfg, out);
            } else {
                used = new ArrayList<>(pool.equals("none") ? FewShot.labelledOnly(trainEx, kk, seed)
                        : FewShot.withSoftPool(trainEx, kk, seed));
                poolEx.forEach(e -> used.add(FewShot.unlabelled(e)));
                out.printf(Locale.ROOT, "student %s (%s): %d gold labels + %d soft-labelled texts, T=%.2f alpha=%.2f%n",
                        sb.displayName(), mode, kk, used.size() - kk, dcfg.temperature(), dcfg.alpha());
                Distiller d = new Distiller(teacher.model, teacher.root, model, root, dcfg, teacherKey, new Rng(seed));
                String cacheName = "teacher_cache-" + (pool.equals("none") ? "k" + kk : pool.replaceAll("[^A-Za-z0-9]+", "_"))
                        + (dcfg.usesHidden() ? "-hidden" : "") + ".safetensors";
                result = d.fit(used, null, padId, maxLen, cfg, outDir.resolve(cacheName), model.bert().dropoutRng(), out);
            }
            double trainSec = Fmt.secondsSince(t0);
            Classification.predictLogits(root, model, evalEx.subList(0, Math.min(WARMUP, evalEx.size())), padId);
            long e0 = System.nanoTime();
            double acc = Classification.accuracy(Classification.predictLogits(root, model, evalEx, padId), evalEx);
            double evalSec = Fmt.secondsSince(e0);

            Path studentDir = runDir.resolve("student");
            if (pm != null) {
                pm.save(studentDir);
            } else {
                // a full student is a model folder of its own: with its tokenizer, predict/eval --model take it as is
                model.save(studentDir);
                MergeCommand.copyTokenizer(sb, studentDir);
            }
            new Classification.TaskInfo(Classification.TASK, model.config().id2label(), model.config().classifierPooling(),
                    maxLen, Models.baseModelId(studentSpec)).write(studentDir);

            ObjectNode r = JsonFiles.mapper().createObjectNode();
            r.put("run", runDir.getFileName().toString());
            r.put("k", kk);
            r.put("method", method);
            r.put("mode", mode);
            r.put("train_examples", used.size());
            r.put("accuracy", acc);
            r.put("eval_seconds", evalSec);
            r.put("train_loss", result.lastLoss());
            r.put("steps", result.globalStep());
            r.put("train_seconds", trainSec);
            r.put("student", studentDir.toString());
            return r;
        }
    }

    /**
     * The unlabelled texts a pool spec adds beyond data.train ({@code rest} and {@code none} add
     * nothing), without the training and evaluation texts and without repeats.
     */
    private static List<Example> extraPool(String pool, Tokenizer tok, int maxLen, String textField, String labelField,
                                           List<String> labels, Path file, List<TextExample> train, List<TextExample> eval)
            throws IOException {
        if (pool.equals("rest") || pool.equals("none")) {
            return List.of();
        }
        List<TextExample> texts;
        if (pool.equals("imdb:full")) {
            Path cache = Path.of(System.getProperty("user.home"), ".cache", "peft4j", "imdb");
            if (!Files.isRegularFile(cache.resolve(Imdb.TARBALL_FILE))) {
                throw new CliException(file + ": distill.pool imdb:full needs the fetched reviews: run peft4j data fetch imdb first");
            }
            texts = Imdb.fetchFull(cache);
        } else {
            texts = DataSources.load(pool, "train", textField, labelField, labels).examples();
        }
        // the fetched 50,000 contain the bundled split: its test texts must not become soft-labelled training texts
        Set<String> seen = new java.util.HashSet<>();
        train.forEach(t -> seen.add(t.text()));
        eval.forEach(t -> seen.add(t.text()));
        List<TextExample> fresh = new ArrayList<>();
        for (TextExample t : texts) {
            if (seen.add(t.text())) {
                fresh.add(t);
            }
        }
        return Classification.encode(tok, fresh, maxLen);
    }

    /** Distillation works on token ids, so both models must tokenize alike: checked on a probe sentence. */
    private static void checkSameTokenizer(Tokenizer teacher, Tokenizer student, String studentSpec) {
        String probe = "The film's pacing was uneven, but the acting (especially the lead) was superb!";
        int[] t = teacher.encode(probe, 64, true).ids();
        int[] s = student.encode(probe, 64, true).ids();
        if (!Arrays.equals(t, s)) {
            throw new CliException("teacher and student tokenize differently (student " + studentSpec
                    + "): distillation on token ids needs one vocabulary; teacher ids " + Arrays.toString(t)
                    + ", student ids " + Arrays.toString(s));
        }
    }

    /** The student's training arguments for one run: its folder, and the full model's own learning rate when given. */
    private static TrainingConfig runTraining(TrainingConfig training, JsonNode studentNode, String mode, Path runDir) {
        TrainingConfig.Builder b = training.toBuilder().outputDir(runDir);
        if (mode.equals(MODE_FULL) && studentNode.has("full_learning_rate")) {
            b.learningRate(studentNode.get("full_learning_rate").asDouble());
        }
        return b.build();
    }

    private static JsonNode mapping(ObjectNode root, String key, Path file, boolean required) {
        JsonNode n = root.path(key);
        if (n.isMissingNode() && !required) {
            return JsonFiles.mapper().createObjectNode();
        }
        if (!n.isObject()) {
            throw new CliException(file + ": '" + key + "' must be a mapping");
        }
        return n;
    }

    private static TrainingConfig trainingConfig(ObjectNode root, Path outDir, Path file) {
        ObjectNode training = root.path("training").isObject() ? ((ObjectNode) root.get("training")).deepCopy()
                : JsonFiles.mapper().createObjectNode();
        training.put("output_dir", outDir.toString());
        if (!training.has("checkpoint_interval")) {
            training.put("checkpoint_interval", -1);
        }
        try {
            return TrainingConfig.fromJson(training, "training.");
        } catch (IllegalArgumentException e) {
            throw new CliException(file + ": " + e.getMessage(), e);
        }
    }

    static DistillationConfig distillationConfig(JsonNode d, Path file) {
        List<DistillationConfig.LayerPair> pairs = new ArrayList<>();
        for (JsonNode p : d.path("layers")) {
            if (!p.isArray() || p.size() != 2 || !p.get(0).canConvertToInt() || !p.get(1).canConvertToInt()) {
                throw new CliException(file + ": distill.layers entries must be [teacher, student] index pairs, got " + p);
            }
            pairs.add(new DistillationConfig.LayerPair(p.get(0).asInt(), p.get(1).asInt()));
        }
        String hl = d.path("hidden_loss").asText(pairs.isEmpty() ? "none" : "mse").toUpperCase(Locale.ROOT);
        try {
            return new DistillationConfig(TrainRecipe.number(d, "temperature", 2.0, file, "distill"),
                    TrainRecipe.number(d, "alpha", 0.5, file, "distill"),
                    DistillationConfig.HiddenLoss.valueOf(hl), TrainRecipe.number(d, "hidden_weight", 1.0, file, "distill"),
                    pairs, TrainRecipe.number(d, "attention_weight", 0.0, file, "distill"));
        } catch (IllegalArgumentException e) {
            throw new CliException(file + ": distill: " + e.getMessage(), e);
        }
    }

    private static List<Integer> intList(JsonNode n, List<Integer> def, String what) {
        if (n.isMissingNode() || n.isNull()) {
            return def;
        }
        List<Integer> out = new ArrayList<>();
        for (JsonNode x : n.isArray() ? n : JsonFiles.mapper().createArrayNode().add(n)) {
            if (x.isTextual() && x.asText().equalsIgnoreCase("all")) {
                out.add(ALL);
            } else if (x.canConvertToInt() && x.asInt() >= 0) {
                out.add(x.asInt());
            } else {
                throw new CliException(what + " must be a count >= 0, 'all', or a list of them, got " + x);
            }
        }
        return out;
    }

    private static List<String> textList(JsonNode n, List<String> def, Set<String> allowed, String what) {
        if (n.isMissingNode() || n.isNull()) {
            return def;
        }
        List<String> out = new ArrayList<>();
        for (JsonNode x : n.isArray() ? n : JsonFiles.mapper().createArrayNode().add(n)) {
            String v = x.asText().toLowerCase(Locale.ROOT);
            if (!allowed.contains(v)) {
                throw new CliException(what + ": '" + v + "' is not one of " + String.join(", ", new java.util.TreeSet<>(allowed)));
            }
            out.add(v);
        }
        return out;
    }

    /** The config with every default filled in, re-readable by peft4j distill, plus the provenance. */
    private static ObjectNode resolved(ObjectNode root, Path outDir, TrainingConfig training, DistillationConfig d,
                                       List<Integer> ks, List<String> methods, List<String> modes, String pool, long seed,
                                       int maxLen, String teacherSpec, Path teacherAdapter, Path file) {
        ObjectNode r = root.deepCopy();
        ObjectNode t = r.putObject("teacher");
        t.put("model", Models.isBundled(teacherSpec) ? teacherSpec : Path.of(teacherSpec).toAbsolutePath().normalize().toString());
        if (teacherAdapter != null) {
            t.put("adapter", teacherAdapter.toAbsolutePath().normalize().toString());
        }
        ((ObjectNode) r.get("student")).set("modes", JsonFiles.mapper().valueToTree(modes));
        ((ObjectNode) r.get("data")).put("max_length", maxLen);
        ObjectNode dn = r.putObject("distill");
        dn.set("methods", JsonFiles.mapper().valueToTree(methods));
        ArrayNode kn = dn.putArray("k");
        ks.forEach(k -> {
            if (k == ALL) {
                kn.add("all");
            } else {
                kn.add(k);
            }
        });
        dn.put("pool", pool);
        dn.put("temperature", d.temperature());
        dn.put("alpha", d.alpha());
        ArrayNode layers = dn.putArray("layers");
        d.layers().forEach(p -> layers.addArray().add(p.teacher()).add(p.student()));
        dn.put("hidden_loss", d.hiddenLoss().name().toLowerCase(Locale.ROOT));
        dn.put("hidden_weight", d.hiddenWeight());
        dn.put("attention_weight", d.attentionWeight());
        dn.put("seed", seed);
        r.set("training", training.toJson());
        r.put("output_dir", outDir.toString());
        ObjectNode prov = r.putObject("provenance");
        prov.put("config_file", file.toAbsolutePath().normalize().toString());
        prov.put("seed", seed);
        prov.put("peft4j", PeftModel.PEFT4J_VERSION);
        prov.put("java", System.getProperty("java.version"));
        prov.put("finished", OffsetDateTime.now().truncatedTo(ChronoUnit.SECONDS).toString());
        return r;
    }
}
