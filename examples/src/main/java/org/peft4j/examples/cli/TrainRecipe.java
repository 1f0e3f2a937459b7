package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import org.yaml.snakeyaml.LoaderOptions;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.train.TrainingConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.OffsetDateTime;
import java.time.temporal.ChronoUnit;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * A fine-tuning run as a {@code peft4j train} YAML file describes it — model, task, data, the PEFT
 * method config in PEFT's own keys (read through {@link PeftConfig}'s Jackson mapping, so any
 * installed method works) and training arguments (TrainingConfig's snake_case keys) — validated,
 * with {@code --set} overrides applied and defaults filled in; and, after the run, the resolved
 * config that reproduces it.
 *
 * @param file      the YAML file (named in messages and the provenance)
 * @param root      the file's mapping after the overrides
 * @param model     minilm, bge-small or a model folder
 * @param task      what is trained ({@link TrainTask#forName})
 * @param data      the {@code data} mapping ({@link #DATA_KEYS})
 * @param peft      the method config; seed, base model and task type filled in
 * @param training  the training arguments; output folder set, checkpoints off unless asked for
 * @param maxLength tokens per example ({@code data.max_length}, default 128)
 * @param outputDir absolute output folder
 * @param resume    continue from the newest checkpoint in the output folder ({@code --resume})
 */
record TrainRecipe(Path file, ObjectNode root, String model, TrainTask task, JsonNode data, PeftConfig peft,
                   TrainingConfig training, int maxLength, Path outputDir, boolean resume) {
    static final Set<String> TOP_KEYS = Set.of("model", "task", "data", "peft", "training", "output_dir", "provenance");
    static final Set<String> DATA_KEYS = Set.of("train", "eval", "text_field", "label_field", "labels", "max_length",
            "train_limit", "eval_limit");
    /** Where {@link #dataInfo} keeps the counts until {@link #resolved} moves them to the provenance. */
    private static final String COUNTS = "__counts";

    /**
     * Reads and checks {@code file}; {@code overrides} are {@code KEY=VALUE} strings
     * ({@link #applyOverride}), {@code outputDir} (or null) replaces {@code output_dir}.
     */
    static TrainRecipe read(Path file, List<String> overrides, Path outputDir) throws IOException {
        return read(file, overrides, outputDir, false);
    }

    static TrainRecipe read(Path file, List<String> overrides, Path outputDir, boolean resume) throws IOException {
        return read(file, overrides, outputDir, resume, true);
    }

    /**
     * As {@link #read(Path, List, Path, boolean)}; {@code overridesTyped} says the overrides come
     * from the user's command line ({@code --set}), so an {@code output_dir=DIR} among them names
     * its folder outright, as {@code --output-dir DIR} does. Overrides read from another file (a
     * distillation config's {@code teacher.overrides}) are held to the recipe's own rule.
     */
    static TrainRecipe read(Path file, List<String> overrides, Path outputDir, boolean resume, boolean overridesTyped)
            throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new CliException("config file " + file + " does not exist");
        }
        ObjectMapper yaml = yaml();
        JsonNode root;
        try {
            root = YamlTree.read(file, yamlFactory()); // aliases resolved, expansion bounded
        } catch (IOException e) {
            throw new CliException("cannot parse " + file + " as YAML: " + firstLine(e.getMessage()));
        }
        if (root == null || !root.isObject()) {
            throw new CliException(file + " must hold a YAML mapping (model, task, data, peft, training, output_dir)");
        }
        for (String override : overrides) {
            applyOverride((ObjectNode) root, override, yaml);
        }
        checkKeys(root, TOP_KEYS, file, "");
        for (String k : List.of("model", "task")) {
            JsonNode v = root.get(k);
            if (v != null && !v.isTextual()) {
                throw new CliException(file + ": " + k + " must be a string, got " + describe(v));
            }
        }
        if (root.has("provenance") && !root.get("provenance").isObject()) {
            throw new CliException(file + ": provenance must be a mapping (it is written by peft4j train and not read),"
                    + " got " + describe(root.get("provenance")));
        }
        String model = text(root, "model", file + ": 'model' (minilm, bge-small or a model folder)");
        TrainTask task = TrainTask.forName(root.path("task").asText(TrainTask.SEQ_CLS), file);
        JsonNode data = root.path("data");
        if (!data.isObject()) {
            throw new CliException(file + ": 'data' must be a mapping with at least 'train'");
        }
        checkKeys(data, DATA_KEYS, file, "data");
        JsonNode peftNode = root.path("peft");
        if (!peftNode.isObject()) {
            throw new CliException(file + ": 'peft' must be a mapping with the method's PEFT keys (peft_type: LORA, r: 8, ...)");
        }
        if (outputDir == null && overridesTyped && overrides.stream().anyMatch(o -> o.strip().startsWith("output_dir="))) {
            JsonNode od = root.get("output_dir");
            if (od == null || !od.isTextual() || od.textValue().isBlank()) {
                throw new CliException("--set output_dir needs a path, got " + describe(od));
            }
            outputDir = Path.of(od.textValue());   // typed on the command line: named outright
        }
        Path outDir = outputDir(root, file, outputDir);

        // training arguments: TrainingConfig's own keys; checkpoints off unless asked for
        ObjectNode training = root.path("training").isObject() ? ((ObjectNode) root.get("training")).deepCopy()
                : JsonFiles.mapper().createObjectNode();
        if (!root.path("training").isMissingNode() && !root.path("training").isObject()) {
            throw new CliException(file + ": 'training' must be a mapping of TrainingConfig keys");
        }
        JsonNode tod = training.get("output_dir");
        if (tod != null && outputDir == null
                && !(tod.isTextual() && Path.of(tod.textValue()).toAbsolutePath().normalize().equals(outDir))) {
            // the output folder is the top-level output_dir; a different one here would be ignored silently
            throw new CliException(file + ": training.output_dir " + tod + " differs from output_dir " + outDir
                    + "; the output folder is the top-level output_dir (or --output-dir): remove training.output_dir");
        }
        training.put("output_dir", outDir.toString());
        if (!training.has("checkpoint_interval")) {
            training.put("checkpoint_interval", -1);
        }
        TrainingConfig cfg;
        try {
            cfg = TrainingConfig.fromJson(training, "training.");
        } catch (IllegalArgumentException e) {
            throw new CliException(file + ": " + e.getMessage(), e);
        }

        // strictly typed: an unknown key or a wrong-typed value is an error naming peft.<key>
        PeftConfig peft = PeftConfig.fromJsonStrict(peftNode, file.toString(), "peft");
        peft.setSeed(cfg.seed());
        if (peft.baseModelNameOrPath() == null) {
            peft.setBaseModelNameOrPath(Models.baseModelId(model));
        }
        if (peft.taskType() == null) {
            peft.setTaskType(task.peftTaskType());
        }
        int maxLen = dataInt(data, "max_length", 128, file);
        for (String k : List.of("train_limit", "eval_limit")) {
            dataInt(data, k, 0, file);
        }
        for (String k : List.of("train", "eval", "text_field", "label_field")) {
            if (data.has(k) && !data.get(k).isTextual()) {
                throw new CliException(file + ": data." + k + " must be a string, got " + data.get(k));
            }
        }
        if (data.has("labels") && !data.get("labels").isArray()) {
            throw new CliException(file + ": data.labels must be a list of class names, got " + data.get("labels"));
        }
        for (int i = 0; i < data.path("labels").size(); i++) {
            JsonNode l = data.get("labels").get(i);
            if (!l.isTextual() && !l.isNumber() || l.asText().isBlank()) {
                throw new CliException(file + ": data.labels[" + i + "] must be a class name, got " + describe(l));
            }
        }
        if (maxLen <= 0) {
            throw new CliException(file + ": data.max_length must be positive, got " + maxLen);
        }
        return new TrainRecipe(file, (ObjectNode) root, model, task, data, peft, cfg, maxLen, outDir, resume);
    }

    /**
     * The output folder of a recipe: {@code --output-dir} when given (the user typed it: it may be
     * anywhere), else the recipe's {@code output_dir} (default {@code runs/<file stem>}). A
     * relative one — perhaps from a downloaded recipe — must stay inside the current folder: a path
     * climbing out with {@code ..}, or one whose existing part is a symbolic link leading out, is
     * refused, naming the way to write there on purpose ({@code --output-dir}). So is an absolute
     * one: a recipe file may only write inside the current folder, and a folder elsewhere is named
     * on the command line ({@code --output-dir DIR} or {@code --set output_dir=DIR}).
     */
    static Path outputDir(JsonNode root, Path file, Path override) {
        if (override != null) {
            return override.toAbsolutePath().normalize();
        }
        JsonNode od = root.get("output_dir");
        if (od != null && !od.isTextual()) {
            throw new CliException(file + ": output_dir must be a path (a string), got " + describe(od));
        }
        String spec = od != null ? od.textValue() : "runs/" + stem(file);
        Path rel;
        try {
            rel = Path.of(spec);
        } catch (java.nio.file.InvalidPathException e) {
            throw new CliException(file + ": output_dir '" + spec + "' is not a valid path: " + e.getReason());
        }
        if (spec.isBlank()) {
            throw new CliException(file + ": output_dir is empty");
        }
        if (!rel.isAbsolute() && rel.normalize().startsWith("..")) {
            throw new CliException(file + ": output_dir '" + spec + "' climbs out of the current folder with '..';"
                    + " name a folder elsewhere on the command line with --output-dir");
        }
        if (rel.isAbsolute()) {
            throw new CliException(file + ": output_dir '" + spec + "' is an absolute path; a recipe may only write inside"
                    + " the current folder: give a relative path, or name the folder on the command line with --output-dir "
                    + spec);
        }
        Path cwd = Path.of("").toAbsolutePath().normalize();
        Path out = cwd.resolve(rel).normalize();
        // the part that exists already must not be (or pass through) a link out of the current folder
        Path existing = out;
        while (existing != null && !Files.exists(existing, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            existing = existing.getParent();
        }
        if (existing != null) {
            try {
                Path real = existing.toRealPath();
                if (!real.startsWith(cwd.toRealPath())) {
                    throw new CliException(file + ": output_dir '" + spec + "' leads through the link " + existing
                            + " to " + real + ", outside the current folder; use --output-dir to write there");
                }
            } catch (IOException e) {
                throw new CliException(file + ": output_dir '" + spec + "': cannot resolve " + existing + ": " + e.getMessage());
            }
        }
        return out;
    }

    /**
     * The YAML reader ({@link YamlTree} resolves anchors and aliases on top of it), bounded (at most
     * {@value #MAX_ALIASES} aliases to collections, so a "billion laughs" file is refused at once;
     * nesting at most {@value #MAX_DEPTH} deep; at most 8 MB of text); duplicate keys are an error.
     */
    static ObjectMapper yaml() {
        return new YAMLMapper(yamlFactory());
    }

    static YAMLFactory yamlFactory() {
        LoaderOptions opts = new LoaderOptions();
        opts.setMaxAliasesForCollections(MAX_ALIASES);
        opts.setNestingDepthLimit(MAX_DEPTH);
        opts.setCodePointLimit(8 * 1024 * 1024);
        opts.setAllowDuplicateKeys(false);
        return YAMLFactory.builder().loaderOptions(opts)
                .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_DEPTH).build()).build();
    }

    static final int MAX_ALIASES = 50;
    static final int MAX_DEPTH = 64;

    /** An integer value of the data section (YAML 1.2: also a plain scalar such as 128 read as text). */
    private static int dataInt(JsonNode data, String key, int dflt, Path file) {
        JsonNode v = data.get(key);
        if (v == null || v.isNull()) {
            return dflt;
        }
        if (v.isIntegralNumber() && v.canConvertToInt()) {
            return v.intValue();
        }
        if (v.isTextual() && v.textValue().strip().matches("[-+]?[0-9]{1,9}")) {
            return Integer.parseInt(v.textValue().strip());
        }
        throw new CliException(file + ": data." + key + " must be an integer, got " + describe(v));
    }

    /**
     * {@code parent.<key>} (at dotted {@code path} in {@code file}) as a number, {@code dflt} when
     * absent; a JSON number or a numeric plain scalar ({@code 1e-3}, which YAML 1.1 leaves as
     * text). Anything else is an error naming the key: never a silent default.
     */
    static double number(JsonNode parent, String key, double dflt, Object file, String path) {
        JsonNode v = parent.get(key);
        if (v == null) {
            return dflt;
        }
        if (v.isNumber()) {
            return v.doubleValue();
        }
        if (v.isTextual() && v.textValue().strip().matches("[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?")) {
            return Double.parseDouble(v.textValue().strip());
        }
        throw new CliException(file + ": " + path + "." + key + " must be a number, got " + describe(v));
    }

    /** As {@link #number}, an integer. */
    static int integer(JsonNode parent, String key, int dflt, Object file, String path) {
        JsonNode v = parent.get(key);
        if (v == null) {
            return dflt;
        }
        if (v.isIntegralNumber() && v.canConvertToInt()) {
            return v.intValue();
        }
        if (v.isTextual() && v.textValue().strip().matches("[-+]?[0-9]{1,9}")) {
            return Integer.parseInt(v.textValue().strip());
        }
        throw new CliException(file + ": " + path + "." + key + " must be an integer, got " + describe(v));
    }

    /** {@code data.<key>} as an integer ({@code dflt} when absent); a non-integer is an error naming the key. */
    int dataInt(String key, int dflt) {
        return dataInt(data, key, dflt, file);
    }

    /**
     * Checks what the run will read before anything is written: the model is bundled or a folder
     * with a config.json, every data file exists, and the output folder is not a file. The
     * command creates nothing on disk until this has passed.
     */
    void checkInputs() {
        if (!Models.isBundled(model)) {
            Path m = Path.of(model);
            if (!Files.isDirectory(m)) {
                throw new CliException(file + ": model '" + model + "' is neither a bundled model (minilm, bge-small)"
                        + " nor a folder");
            }
            if (!Files.isRegularFile(m.resolve("config.json"))) {
                throw new CliException(file + ": model folder " + m + " has no config.json");
            }
        }
        for (String k : List.of("train", "eval")) {
            JsonNode v = data.get(k);
            if (v == null) {
                if (k.equals("train")) {
                    throw new CliException(file + ": data.train is missing (a .jsonl/.csv/.tsv/.txt file or imdb)");
                }
                continue;
            }
            String spec = v.textValue();
            if (!spec.equals(DataSources.IMDB) && !spec.startsWith(DataSources.IMDB + ":")
                    && !Files.isRegularFile(Path.of(spec))) {
                throw new CliException(file + ": data." + k + " file " + spec + " does not exist");
            }
        }
        if (Files.exists(outputDir) && !Files.isDirectory(outputDir)) {
            throw new CliException(file + ": output_dir " + outputDir + " exists and is not a folder");
        }
    }

    /** {@code data.<key>}, required to be a non-blank value. */
    String dataText(String key, String what) {
        return text(data, key, what);
    }

    /**
     * The resolved config: every value used (paths absolute, defaults filled in, the seed), which
     * {@code peft4j train} can read again, plus a provenance section (counts, versions, time).
     */
    ObjectNode resolved(TrainTask.Run run) {
        ObjectNode r = JsonFiles.mapper().createObjectNode();
        r.put("model", Models.isBundled(model) ? model : Path.of(model).toAbsolutePath().normalize().toString());
        r.put("task", task.name());
        ObjectNode dataNode = run.dataInfo().deepCopy();
        JsonNode counts = dataNode.remove(COUNTS);
        r.set("data", dataNode);
        ObjectNode p = JsonFiles.mapper().valueToTree(new TreeMap<>(peft.toMap()));
        p.remove("peft_version");
        p.remove("inference_mode");
        r.set("peft", p);
        ObjectNode t = training.toJson();
        t.remove("output_dir");   // the top-level output_dir is the one read
        r.set("training", t);
        r.put("output_dir", outputDir.toString());
        ObjectNode prov = r.putObject("provenance");
        prov.put("config_file", file.toAbsolutePath().normalize().toString());
        prov.put("seed", training.seed());
        prov.put("peft4j", PeftModel.PEFT4J_VERSION);
        prov.put("java", System.getProperty("java.version"));
        prov.put("started_from", System.getProperty("user.dir"));
        prov.put("finished", OffsetDateTime.now().truncatedTo(ChronoUnit.SECONDS).toString());
        prov.setAll((ObjectNode) counts);
        prov.put("steps", run.result().globalStep());
        prov.put("train_seconds", Math.round(run.seconds() * 10) / 10.0);
        return r;
    }

    /**
     * The data section as resolved (file paths absolute, defaults filled in) — re-readable by
     * {@code peft4j train} — with the example counts kept apart for the provenance section.
     */
    ObjectNode dataInfo(String train, int trainN, String eval, int evalN, String textField, String labelField,
                        List<String> labels, int maxLen) {
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
            if (data.has(k)) {
                d.put(k, dataInt(k, 0));
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

    private static String resolvePath(String spec) {
        return spec.equals(DataSources.IMDB) || spec.startsWith(DataSources.IMDB + ":") ? spec
                : Path.of(spec).toAbsolutePath().normalize().toString();
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

    /** A value as messages show it: {@code "fast" (string)}. */
    static String describe(JsonNode v) {
        String t = v.toString();
        return (t.length() > 60 ? t.substring(0, 60) + "..." : t) + " (" + v.getNodeType().name().toLowerCase(java.util.Locale.ROOT) + ")";
    }

    /**
     * Every key of mapping {@code node} (at dotted {@code path} in {@code file}; "" for the top
     * level) is one of {@code known}; else an error naming the key by its full path.
     */
    static void checkKeys(JsonNode node, Set<String> known, Object file, String path) {
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!known.contains(k)) {
                throw new CliException(file + ": unknown key " + (path.isEmpty() ? "'" + k + "'" : path + "." + k)
                        + " (known: " + String.join(", ", new TreeSet<>(known)) + ")");
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

    static String stem(Path file) {
        String n = file.getFileName().toString();
        int dot = n.lastIndexOf('.');
        return dot > 0 ? n.substring(0, dot) : n;
    }

    static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
