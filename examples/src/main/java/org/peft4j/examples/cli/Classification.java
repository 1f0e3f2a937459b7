package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.data.TextExample;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.io.CheckpointWeights;
import org.peft4j.core.io.TensorInfo;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.SequenceClassifier;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.decoder.DecoderForSequenceClassification;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.tokenizer.Encoding;
import org.peft4j.core.tokenizer.Tokenizer;
import org.peft4j.core.train.Batch;
import org.peft4j.core.train.DataLoader;
import org.peft4j.core.train.Dataset;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.LossFunction;
import org.peft4j.core.train.PaddingCollator;
import org.peft4j.core.train.TrainResult;
import org.peft4j.core.train.Trainer;
import org.peft4j.core.train.TrainingConfig;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Sequence classification as the CLI does it: tokenizing labelled texts, training a
 * {@link SequenceClassifier} (BERT's {@link BertForSequenceClassification} or a decoder's
 * {@link DecoderForSequenceClassification}; plain or PEFT-wrapped) with the shared {@link Trainer},
 * predicting, and reopening a trained classifier from a base model plus an adapter folder.
 */
final class Classification {
    /**
     * Written next to a classification adapter (PEFT ignores extra files): label names, pooling and
     * maximum length, which an adapter folder alone does not record.
     */
    static final String TASK_FILE = "peft4j_task.json";
    static final String TASK = "sequence_classification";
    static final int EVAL_BATCH = 64;

    private Classification() {
    }

    /** The {@link #TASK_FILE} pooling of a decoder classifier: the last non-padding token. */
    static final String LAST_TOKEN = "last_token";

    /**
     * What {@link #TASK_FILE} holds.
     *
     * @param pooling    BERT's sequence vector; null for a decoder classifier (pooling {@value #LAST_TOKEN})
     * @param padTokenId the decoder classifier's {@code pad_token_id} (null for BERT)
     */
    record TaskInfo(String task, List<String> labels, BertConfig.Pooling pooling, int maxLength, String baseModel,
                    Integer padTokenId) {
        TaskInfo(String task, List<String> labels, BertConfig.Pooling pooling, int maxLength, String baseModel) {
            this(task, labels, pooling, maxLength, baseModel, null);
        }

        /** The task file of a classifier (BERT's pooling, or a decoder's last token and pad id). */
        static TaskInfo of(SequenceClassifier model, int maxLength, String baseModel) {
            if (model instanceof DecoderForSequenceClassification d) {
                return new TaskInfo(TASK, d.labels(), null, maxLength, baseModel, d.padTokenId());
            }
            BertForSequenceClassification b = (BertForSequenceClassification) model;
            return new TaskInfo(TASK, b.config().id2label(), b.config().classifierPooling(), maxLength, baseModel);
        }

        void write(Path adapterDir) throws IOException {
            ObjectNode n = JsonFiles.mapper().createObjectNode();
            n.put("task", task);
            ArrayNode l = n.putArray("labels");
            labels.forEach(l::add);
            n.put("pooling", pooling == null ? LAST_TOKEN : pooling.name().toLowerCase(Locale.ROOT));
            if (padTokenId != null) {
                n.put("pad_token_id", padTokenId);
            }
            n.put("max_length", maxLength);
            n.put("base_model", baseModel);
            AtomicFiles.writeString(adapterDir.resolve(TASK_FILE), JsonFiles.toPrettyString(n) + "\n");
        }

        /** The task file of an adapter folder, or null when there is none. */
        static TaskInfo read(Path adapterDir) throws IOException {
            Path f = adapterDir.resolve(TASK_FILE);
            if (!Files.isRegularFile(f)) {
                return null;
            }
            JsonNode n = JsonFiles.read(f);
            List<String> labels = new ArrayList<>();
            n.path("labels").forEach(x -> labels.add(x.asText()));
            if (labels.isEmpty()) {
                throw new CliException(f + ": 'labels' must list at least one label");
            }
            BertConfig.Pooling pooling = null;
            String p = n.path("pooling").asText("mean");
            if (!p.equals(LAST_TOKEN)) {
                try {
                    pooling = BertConfig.Pooling.valueOf(p.toUpperCase(Locale.ROOT));
                } catch (IllegalArgumentException e) {
                    throw new CliException(f + ": 'pooling' must be pooler, mean, cls or " + LAST_TOKEN + ", got '" + p + "'");
                }
            }
            JsonNode pad = n.get("pad_token_id");
            if (pad != null && !pad.isNull() && !pad.canConvertToInt()) {
                throw new CliException(f + ": 'pad_token_id' must be an integer, got " + pad);
            }
            return new TaskInfo(n.path("task").asText(TASK), labels, pooling, n.path("max_length").asInt(128),
                    n.path("base_model").asText(null), pad == null || pad.isNull() ? null : pad.asInt());
        }
    }

    // ---- data ------------------------------------------------------------------------------

    /** Token ids with special tokens, cut to {@code maxLength}; token types are left out (all zero). */
    static List<Example> encode(Tokenizer tok, List<TextExample> data, int maxLength) {
        List<Example> out = new ArrayList<>(data.size());
        for (TextExample t : data) {
            Encoding e = tok.encode(t.text(), maxLength, true);
            out.add(new Example(e.ids(), t.label()));
        }
        return out;
    }

    static int padId(Tokenizer tok) {
        return Math.max(tok.padId(), 0);
    }

    /**
     * The id batches of {@code model} are padded with: a decoder classifier's {@code pad_token_id}
     * (its last-token rule finds the padding by that id), else {@link #padId(Tokenizer)}.
     */
    static int padId(Tokenizer tok, SequenceClassifier model) {
        if (model instanceof DecoderForSequenceClassification d && d.padTokenId() != null) {
            return d.padTokenId();
        }
        return padId(tok);
    }

    /**
     * The pad id a new decoder classifier gets (transformers users set {@code config.pad_token_id}
     * from the tokenizer): the tokenizer's pad token, else the decoder config's
     * {@code pad_token_id}, else its first {@code eos_token_id}, else 0.
     */
    static int decoderPadId(Tokenizer tok, DecoderLM lm) {
        if (tok != null && tok.padId() >= 0) {
            return tok.padId();
        }
        JsonNode p = lm.configJson().get("pad_token_id");
        if (p != null && p.canConvertToInt()) {
            return p.asInt();
        }
        List<Integer> eos = GenerateCommand.eosIds(lm);
        return eos.isEmpty() ? 0 : eos.get(0);
    }

    /** Mean number of tokens per example (for throughput estimates). */
    static double meanLength(List<Example> examples) {
        long n = 0;
        for (Example e : examples) {
            n += e.ids().length;
        }
        return examples.isEmpty() ? 0 : (double) n / examples.size();
    }

    // ---- training --------------------------------------------------------------------------

    /** Logits {@code [B, C]} of a collated batch. */
    static Tensor logits(SequenceClassifier model, Batch b) {
        return model.classify(b.inputIds(), b.attentionMask(), b.tokenTypeIds());
    }

    static LossFunction loss(SequenceClassifier model) {
        return (m, b) -> Ops.crossEntropy(logits(model, b), b.labels(), Ops.Reduction.MEAN);
    }

    /**
     * Trains the given parameters of {@code root} (the PeftModel, or the plain model) on
     * {@code train}, printing the progress line to {@code progress}.
     */
    static TrainResult fit(Module root, SequenceClassifier model, Map<String, Parameter> trainable,
                           List<Example> train, int padId, int maxLength, TrainingConfig config, PrintStream progress) {
        DataLoader<Example> loader = DataLoader.forTraining(Dataset.of(train),
                PaddingCollator.dynamic(padId, maxLength, true), config);
        Trainer.Builder b = Trainer.builder(root, trainable, loss(model), config);
        if (model instanceof BertForSequenceClassification bert) {
            b.rng(bert.bert().dropoutRng());
        } else {
            b.rngs(dropoutRngs(root));
        }
        Trainer trainer = b.progressStream(progress).build();
        TrainResult r = trainer.fit(loader);
        root.eval();
        return r;
    }

    // ---- prediction ------------------------------------------------------------------------

    /**
     * Logits {@code [N][C]} in the order of {@code examples}, in eval mode without gradients.
     * Batches are formed from examples of similar length so little time goes into padding.
     */
    /** The generators of every dropout module under {@code root}, each once, in tree order. */
    static List<Rng> dropoutRngs(Module root) {
        java.util.IdentityHashMap<Rng, Boolean> seen = new java.util.IdentityHashMap<>();
        List<Rng> out = new ArrayList<>();
        for (Module m : root.namedModules().values()) {
            if (m instanceof org.peft4j.core.nn.Dropout d && d.rng() != null && seen.put(d.rng(), Boolean.TRUE) == null) {
                out.add(d.rng());
            }
        }
        return out;
    }

    static float[][] predictLogits(Module root, SequenceClassifier model, List<Example> examples, int padId) {
        root.eval();
        Integer[] order = new Integer[examples.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, Comparator.comparingInt(i -> examples.get(i).ids().length));
        float[][] out = new float[examples.size()][];
        PaddingCollator<Example> collator = PaddingCollator.dynamic(padId);
        try (NoGrad ignored = NoGrad.enter()) {
            for (int start = 0; start < order.length; start += EVAL_BATCH) {
                int end = Math.min(order.length, start + EVAL_BATCH);
                List<Example> chunk = new ArrayList<>(end - start);
                for (int i = start; i < end; i++) {
                    chunk.add(examples.get(order[i]));
                }
                INDArray l = logits(model, collator.collate(chunk)).value();
                for (int i = start; i < end; i++) {
                    out[order[i]] = l.getRow(i - start).toFloatVector();
                }
            }
        }
        return out;
    }

    static int argmax(float[] row) {
        int best = 0;
        for (int c = 1; c < row.length; c++) {
            if (row[c] > row[best]) {
                best = c;
            }
        }
        return best;
    }

    static double accuracy(float[][] logits, List<Example> examples) {
        if (examples.isEmpty()) {
            return Double.NaN;
        }
        int correct = 0;
        for (int i = 0; i < examples.size(); i++) {
            if (argmax(logits[i]) == examples.get(i).label()) {
                correct++;
            }
        }
        return (double) correct / examples.size();
    }

    static float[] softmax(float[] row) {
        float max = Float.NEGATIVE_INFINITY;
        for (float v : row) {
            max = Math.max(max, v);
        }
        double sum = 0;
        float[] p = new float[row.length];
        for (int i = 0; i < row.length; i++) {
            p[i] = (float) Math.exp(row[i] - max);
            sum += p[i];
        }
        for (int i = 0; i < row.length; i++) {
            p[i] /= (float) sum;
        }
        return p;
    }

    /** Largest absolute difference between two logit tables of the same shape. */
    static double maxAbsDiff(float[][] a, float[][] b) {
        double d = 0;
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[i].length; j++) {
                d = Math.max(d, Math.abs(a[i][j] - b[i][j]));
            }
        }
        return d;
    }

    // ---- reopening a trained classifier ----------------------------------------------------

    /** A classifier ready to predict. Close it to free the tokenizer. */
    static final class Classifier implements AutoCloseable {
        final Models.Base base;
        final SequenceClassifier model;
        /** What to call train/eval on: the PeftModel, or the model itself. */
        final Module root;
        final PeftModel peft;
        final List<String> labels;
        final int maxLength;

        Classifier(Models.Base base, SequenceClassifier model, Module root, PeftModel peft,
                   List<String> labels, int maxLength) {
            this.base = base;
            this.model = model;
            this.root = root;
            this.peft = peft;
            this.labels = labels;
            this.maxLength = maxLength;
        }

        Tokenizer tokenizer() {
            return base.requireTokenizer("classifying text");
        }

        float[][] predictLogits(List<Example> examples) {
            return Classification.predictLogits(root, model, examples, padId(tokenizer(), model));
        }

        @Override
        public void close() {
            base.close();
        }
    }

    /**
     * The model spec to use: the one given, or the adapter config's {@code base_model_name_or_path}
     * when none was given.
     */
    static String resolveModelSpec(String given, Path adapterDir) {
        if (given != null) {
            return given;
        }
        if (adapterDir != null) {
            String fromAdapter = PeftConfig.load(adapterDir).baseModelNameOrPath();
            if (fromAdapter != null && !fromAdapter.isBlank()) {
                return fromAdapter;
            }
            throw new CliException("missing --model, and adapter " + adapterDir
                    + " does not name its base model (base_model_name_or_path)");
        }
        throw new CliException("missing required option --model");
    }

    /**
     * A classifier from a model spec and an optional adapter folder. Without an adapter the model
     * must be a sequence-classification checkpoint (e.g. the output of {@code peft4j merge}). With
     * one, see {@link #openModel}.
     */
    static Classifier open(String modelSpec, Path adapterDir, Integer maxLengthOverride, long seed) throws IOException {
        Opened o = openModel(modelSpec, adapterDir, seed);
        try {
            if (o.model() == null) {
                throw new CliException(adapterDir == null
                        ? "model " + o.base().displayName() + " has no classification head; give --adapter"
                        + " (a folder written by peft4j train/demo) or a merged classifier folder"
                        : "adapter " + adapterDir + " does not save a classifier head (modules_to_save: [classifier] for BERT, [score] for decoders),"
                        + " so it cannot classify");
            }
            int maxLength = maxLengthOverride != null ? maxLengthOverride : o.info() != null ? o.info().maxLength() : 128;
            return new Classifier(o.base(), o.model(), o.root(), o.peft(), o.model().labels(), maxLength);
        } catch (RuntimeException e) {
            o.base().close();
            throw e;
        }
    }

    /**
     * A base model with an adapter folder loaded into it.
     *
     * @param model the classifier, when there is one (a classification checkpoint, or an encoder whose
     *              adapter saves a classifier head); null otherwise
     * @param root  what to call train/eval on: the PeftModel, or the model itself without an adapter
     * @param peft  the PeftModel, or null without an adapter
     * @param info  the adapter's {@link #TASK_FILE}, or null
     */
    record Opened(Models.Base base, SequenceClassifier model, Module root, PeftModel peft, TaskInfo info) {
        /** The module whose forward includes the adapter: the classifier, or the base model. */
        Module inner() {
            return model != null ? (Module) model : base.module();
        }
    }

    /**
     * Loads {@code modelSpec} (or the adapter's {@code base_model_name_or_path}) and the adapter
     * in {@code adapterDir} (may be null) into it. When the base is an encoder and the adapter
     * saves a classifier head (or the folder is a classification checkpoint), a classifier is
     * built first — labels and pooling from {@link #TASK_FILE}, or the label count from the saved
     * head — and the adapter, including its head, is loaded over it.
     */
    static Opened openModel(String modelSpec, Path adapterDir, long seed) throws IOException {
        String spec = resolveModelSpec(modelSpec, adapterDir);
        if (adapterDir != null && !Files.isDirectory(adapterDir)) {
            throw new CliException("adapter folder " + adapterDir + " does not exist");
        }
        Models.Base base = Models.load(spec, seed);
        try {
            TaskInfo info = adapterDir == null ? null : TaskInfo.read(adapterDir);
            SequenceClassifier model = null;
            if (base.decoderClassifier != null) {
                model = base.decoderClassifier;
            } else if (base.kind == Models.Kind.DECODER && adapterDir != null) {
                int saved = savedClassifierRows(adapterDir);
                if (saved > 0) {
                    if (info != null && info.labels().size() != saved) {
                        throw new CliException(adapterDir + ": " + TASK_FILE + " names " + info.labels().size()
                                + " labels but the saved score head has " + saved + " outputs");
                    }
                    List<String> labels = info != null ? info.labels() : defaultLabels(saved);
                    int pad = info != null && info.padTokenId() != null ? info.padTokenId()
                            : decoderPadId(base.tokenizer, base.decoder);
                    model = DecoderForSequenceClassification.withNewHead(base.decoder, labels, pad, new Rng(seed));
                }
            } else if (base.kind == Models.Kind.ENCODER) {
                int saved = adapterDir == null ? -1 : savedClassifierRows(adapterDir);
                if (base.seqClsCheckpoint) {
                    model = Models.loadSeqCls(base.dir, seed);
                } else if (saved > 0) {
                    if (info != null && info.labels().size() != saved) {
                        throw new CliException(adapterDir + ": " + TASK_FILE + " names " + info.labels().size()
                                + " labels but the saved classifier has " + saved + " outputs");
                    }
                    List<String> labels = info != null ? info.labels() : defaultLabels(saved);
                    BertConfig.Pooling pooling = info != null ? info.pooling() : Models.defaultPooling(base.encoder);
                    model = BertForSequenceClassification.withNewHead(base.encoder, labels, pooling, new Rng(seed));
                }
            }
            Module inner = model != null ? (Module) model : base.module();
            Module root = inner;
            PeftModel peft = null;
            if (adapterDir != null) {
                peft = PeftModel.load(inner, adapterDir);
                root = peft;
            }
            root.eval();
            return new Opened(base, model, root, peft, info);
        } catch (RuntimeException | IOException e) {
            base.close();
            throw e;
        }
    }

    /** {@code LABEL_0 … LABEL_{n-1}}, as transformers names unnamed classes. */
    static List<String> defaultLabels(int n) {
        List<String> l = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            l.add("LABEL_" + i);
        }
        return l;
    }

    /**
     * The number of classes of the classifier an adapter folder saved ({@code …classifier.weight [C, H]}),
     * or -1 when it saves none.
     */
    static int savedClassifierRows(Path adapterDir) throws IOException {
        if (org.peft4j.core.peft.AdapterLayouts.forFolder(adapterDir) instanceof org.peft4j.core.peft.AdapterHubLayout) {
            // AdapterHub keeps a head in its own file beside the adapter (or fusion)
            for (String n : List.of(org.peft4j.core.peft.AdapterHubLayout.HEAD_WEIGHTS_NAME,
                    org.peft4j.core.peft.AdapterHubLayout.TORCH_HEAD_WEIGHTS_NAME)) {
                if (Files.isRegularFile(adapterDir.resolve(n))) {
                    return classifierRows(adapterDir.resolve(n));
                }
            }
            return -1;
        }
        Path file = adapterDir.resolve(PeftModel.WEIGHTS_NAME);
        if (!Files.isRegularFile(file) && Files.isRegularFile(adapterDir.resolve(PeftModel.TORCH_WEIGHTS_NAME))) {
            file = adapterDir.resolve(PeftModel.TORCH_WEIGHTS_NAME);
        }
        if (!Files.isRegularFile(file)) {
            throw new CliException("no " + PeftModel.WEIGHTS_NAME + " (or " + PeftModel.TORCH_WEIGHTS_NAME + ") in "
                    + adapterDir);
        }
        return classifierRows(file);
    }

    private static int classifierRows(Path file) throws IOException {
        try (CheckpointWeights st = CheckpointWeights.openFile(file)) {
            for (String k : st.keys()) {
                TensorInfo ti = st.info(k);
                if ((k.endsWith("classifier.weight") || k.endsWith(DecoderForSequenceClassification.SCORE + ".weight"))
                        && ti.shape().length == 2) {
                    return (int) ti.shape()[0];
                }
            }
        }
        return -1;
    }
}
