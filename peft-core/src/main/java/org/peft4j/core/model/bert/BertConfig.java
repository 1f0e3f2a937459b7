package org.peft4j.core.model.bert;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The architecture of a BERT-family encoder, read from a Hugging Face {@code config.json}
 * (field names as in {@code transformers.BertConfig}). Unknown keys are ignored.
 *
 * <p>Required keys: {@code vocab_size}, {@code hidden_size}, {@code num_hidden_layers},
 * {@code num_attention_heads}, {@code intermediate_size}, {@code max_position_embeddings}.
 * The others default as in Hugging Face: {@code hidden_act} "gelu" (exact erf form),
 * dropouts 0.1, {@code type_vocab_size} 2, {@code layer_norm_eps} 1e-12, {@code pad_token_id} 0,
 * two labels. {@code classifier_pooling} is a peft4j extension (ignored by Python readers) that
 * says how {@link BertForSequenceClassification} pools: {@code pooler} (the Hugging Face
 * default, needs pooler weights), {@code mean} (masked mean, for checkpoints without a pooler,
 * such as the bundled MiniLM and BGE) or {@code cls} (the first token's hidden state).
 *
 * @param classifierDropout dropout before the classifier; null means {@code hiddenDropoutProb}
 * @param id2label one label name per class id; its size is the number of labels
 */
public record BertConfig(
        int vocabSize,
        int hiddenSize,
        int numHiddenLayers,
        int numAttentionHeads,
        int intermediateSize,
        String hiddenAct,
        double hiddenDropoutProb,
        double attentionProbsDropoutProb,
        int maxPositionEmbeddings,
        int typeVocabSize,
        double layerNormEps,
        int padTokenId,
        Double classifierDropout,
        List<String> id2label,
        Pooling classifierPooling) {

    private static final Logger LOG = LoggerFactory.getLogger(BertConfig.class);
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS);

    /** Activations this family supports (Hugging Face names). */
    public static final Set<String> ACTIVATIONS = Set.of("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish", "tanh");

    /** Keys without which the architecture is undefined. */
    public static final List<String> REQUIRED_KEYS = List.of("vocab_size", "hidden_size", "num_hidden_layers",
            "num_attention_heads", "intermediate_size", "max_position_embeddings");

    /** How a sequence is reduced to one vector for classification. */
    public enum Pooling {
        /** {@code tanh(dense(h[CLS]))}: Hugging Face's BertPooler (needs {@code pooler.dense} weights). */
        POOLER,
        /** Mean of the hidden states over the attention mask. */
        MEAN,
        /** The first token's hidden state, as is. */
        CLS;

        String jsonName() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }

        static Pooling parse(String s, String source) {
            for (Pooling p : values()) {
                if (p.jsonName().equals(s)) {
                    return p;
                }
            }
            throw new IllegalArgumentException("config " + source + ": classifier_pooling '" + s
                    + "' is not one of pooler, mean, cls");
        }
    }

    public BertConfig {
        positive("vocab_size", vocabSize);
        positive("hidden_size", hiddenSize);
        positive("num_hidden_layers", numHiddenLayers);
        positive("num_attention_heads", numAttentionHeads);
        positive("intermediate_size", intermediateSize);
        positive("max_position_embeddings", maxPositionEmbeddings);
        positive("type_vocab_size", typeVocabSize);
        if (hiddenSize % numAttentionHeads != 0) {
            throw new IllegalArgumentException("hidden_size " + hiddenSize + " is not a multiple of num_attention_heads "
                    + numAttentionHeads);
        }
        if (hiddenAct == null || !ACTIVATIONS.contains(hiddenAct)) {
            throw new IllegalArgumentException("hidden_act '" + hiddenAct + "' is not supported (one of " + ACTIVATIONS + ")");
        }
        probability("hidden_dropout_prob", hiddenDropoutProb);
        probability("attention_probs_dropout_prob", attentionProbsDropoutProb);
        if (classifierDropout != null) {
            probability("classifier_dropout", classifierDropout);
        }
        if (!(layerNormEps > 0)) {
            throw new IllegalArgumentException("layer_norm_eps must be positive, got " + layerNormEps);
        }
        if (padTokenId < 0 || padTokenId >= vocabSize) {
            throw new IllegalArgumentException("pad_token_id " + padTokenId + " is outside the vocabulary [0, " + vocabSize + ")");
        }
        id2label = id2label == null ? defaultLabels(2) : List.copyOf(id2label);
        if (id2label.isEmpty()) {
            throw new IllegalArgumentException("id2label must name at least one label");
        }
        if (classifierPooling == null) {
            classifierPooling = Pooling.POOLER;
        }
    }

    private static void positive(String key, int v) {
        if (v <= 0) {
            throw new IllegalArgumentException(key + " must be positive, got " + v);
        }
    }

    private static void probability(String key, double p) {
        if (!(p >= 0 && p < 1)) {
            throw new IllegalArgumentException(key + " must be in [0, 1), got " + p);
        }
    }

    static List<String> defaultLabels(int n) {
        List<String> l = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            l.add("LABEL_" + i);
        }
        return l;
    }

    public int numLabels() {
        return id2label.size();
    }

    public int headDim() {
        return hiddenSize / numAttentionHeads;
    }

    /** Dropout before a classification head ({@code classifier_dropout}, else {@code hidden_dropout_prob}). */
    public double effectiveClassifierDropout() {
        return classifierDropout != null ? classifierDropout : hiddenDropoutProb;
    }

    /** A builder with Hugging Face's defaults for everything but the sizes. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder starting from this configuration. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.vocabSize = vocabSize;
        b.hiddenSize = hiddenSize;
        b.numHiddenLayers = numHiddenLayers;
        b.numAttentionHeads = numAttentionHeads;
        b.intermediateSize = intermediateSize;
        b.hiddenAct = hiddenAct;
        b.hiddenDropoutProb = hiddenDropoutProb;
        b.attentionProbsDropoutProb = attentionProbsDropoutProb;
        b.maxPositionEmbeddings = maxPositionEmbeddings;
        b.typeVocabSize = typeVocabSize;
        b.layerNormEps = layerNormEps;
        b.padTokenId = padTokenId;
        b.classifierDropout = classifierDropout;
        b.id2label = id2label;
        b.classifierPooling = classifierPooling;
        return b;
    }

    /** Fluent construction; sizes default to bert-base's. */
    public static final class Builder {
        private int vocabSize = 30522;
        private int hiddenSize = 768;
        private int numHiddenLayers = 12;
        private int numAttentionHeads = 12;
        private int intermediateSize = 3072;
        private String hiddenAct = "gelu";
        private double hiddenDropoutProb = 0.1;
        private double attentionProbsDropoutProb = 0.1;
        private int maxPositionEmbeddings = 512;
        private int typeVocabSize = 2;
        private double layerNormEps = 1e-12;
        private int padTokenId = 0;
        private Double classifierDropout;
        private List<String> id2label;
        private Pooling classifierPooling = Pooling.POOLER;

        public Builder vocabSize(int v) { vocabSize = v; return this; }
        public Builder hiddenSize(int v) { hiddenSize = v; return this; }
        public Builder numHiddenLayers(int v) { numHiddenLayers = v; return this; }
        public Builder numAttentionHeads(int v) { numAttentionHeads = v; return this; }
        public Builder intermediateSize(int v) { intermediateSize = v; return this; }
        public Builder hiddenAct(String v) { hiddenAct = v; return this; }
        public Builder hiddenDropoutProb(double v) { hiddenDropoutProb = v; return this; }
        public Builder attentionProbsDropoutProb(double v) { attentionProbsDropoutProb = v; return this; }
        public Builder maxPositionEmbeddings(int v) { maxPositionEmbeddings = v; return this; }
        public Builder typeVocabSize(int v) { typeVocabSize = v; return this; }
        public Builder layerNormEps(double v) { layerNormEps = v; return this; }
        public Builder padTokenId(int v) { padTokenId = v; return this; }
        public Builder classifierDropout(Double v) { classifierDropout = v; return this; }
        public Builder id2label(List<String> v) { id2label = v; return this; }
        public Builder numLabels(int n) { id2label = defaultLabels(n); return this; }
        public Builder classifierPooling(Pooling v) { classifierPooling = v; return this; }

        public BertConfig build() {
            return new BertConfig(vocabSize, hiddenSize, numHiddenLayers, numAttentionHeads, intermediateSize,
                    hiddenAct, hiddenDropoutProb, attentionProbsDropoutProb, maxPositionEmbeddings, typeVocabSize,
                    layerNormEps, padTokenId, classifierDropout, id2label, classifierPooling);
        }
    }

    // ---- config.json ---------------------------------------------------------------------------

    /** Reads {@code config.json}. */
    public static BertConfig load(Path file) {
        String text;
        try {
            text = Files.readString(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        return fromJson(text, file.toString());
    }

    /** Parses a {@code config.json} text; {@code source} names it in error messages. */
    public static BertConfig fromJson(String json, String source) {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("config " + source + " is not valid JSON: " + e.getOriginalMessage(), e);
        }
        return fromJson(root, source);
    }

    /** Reads an already parsed {@code config.json} tree; {@code source} names it in error messages. */
    public static BertConfig fromJson(JsonNode root, String source) {
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException("config " + source + " is not a JSON object");
        }
        List<String> missing = new ArrayList<>();
        for (String k : REQUIRED_KEYS) {
            if (!root.hasNonNull(k)) {
                missing.add(k);
            }
        }
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException("config " + source + " is missing required keys " + missing);
        }
        String modelType = root.path("model_type").asText("bert");
        if (!modelType.equals("bert")) {
            LOG.warn("config {} has model_type '{}', reading it as a BERT encoder", source, modelType);
        }
        Builder b = builder()
                .vocabSize(intKey(root, "vocab_size", 0, source))
                .hiddenSize(intKey(root, "hidden_size", 0, source))
                .numHiddenLayers(intKey(root, "num_hidden_layers", 0, source))
                .numAttentionHeads(intKey(root, "num_attention_heads", 0, source))
                .intermediateSize(intKey(root, "intermediate_size", 0, source))
                .maxPositionEmbeddings(intKey(root, "max_position_embeddings", 0, source))
                .hiddenAct(root.path("hidden_act").asText("gelu"))
                .hiddenDropoutProb(doubleKey(root, "hidden_dropout_prob", 0.1, source))
                .attentionProbsDropoutProb(doubleKey(root, "attention_probs_dropout_prob", 0.1, source))
                .typeVocabSize(intKey(root, "type_vocab_size", 2, source))
                .layerNormEps(doubleKey(root, "layer_norm_eps", 1e-12, source))
                .padTokenId(intKey(root, "pad_token_id", 0, source))
                .classifierDropout(root.hasNonNull("classifier_dropout")
                        ? doubleKey(root, "classifier_dropout", 0, source) : null);
        if (root.hasNonNull("classifier_pooling")) {
            b.classifierPooling(Pooling.parse(root.get("classifier_pooling").asText(), source));
        }
        JsonNode id2label = root.get("id2label");
        if (id2label != null && id2label.isObject() && id2label.size() > 0) {
            TreeMap<Integer, String> byId = new TreeMap<>();
            Iterator<Map.Entry<String, JsonNode>> it = id2label.fields();
            while (it.hasNext()) {
                Map.Entry<String, JsonNode> e = it.next();
                int id;
                try {
                    id = Integer.parseInt(e.getKey());
                } catch (NumberFormatException ex) {
                    throw new IllegalArgumentException("config " + source + ": id2label key '" + e.getKey() + "' is not an integer");
                }
                byId.put(id, e.getValue().asText());
            }
            List<String> labels = new ArrayList<>();
            for (int i = 0; i < byId.size(); i++) {
                String l = byId.get(i);
                if (l == null) {
                    throw new IllegalArgumentException("config " + source + ": id2label has no entry for id " + i
                            + " (ids must be 0.." + (byId.size() - 1) + ")");
                }
                labels.add(l);
            }
            if (root.hasNonNull("num_labels") && root.get("num_labels").asInt() != labels.size()) {
                throw new IllegalArgumentException("config " + source + ": num_labels " + root.get("num_labels").asInt()
                        + " disagrees with id2label's " + labels.size() + " entries");
            }
            b.id2label(labels);
        } else if (root.hasNonNull("num_labels")) {
            b.numLabels(intKey(root, "num_labels", 2, source));
        }
        try {
            return b.build();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("config " + source + ": " + e.getMessage(), e);
        }
    }

    private static int intKey(JsonNode root, String key, int dflt, String source) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return dflt;
        }
        if (!n.canConvertToInt() || !n.isIntegralNumber()) {
            throw new IllegalArgumentException("config " + source + ": '" + key + "' must be an integer, found " + n);
        }
        return n.asInt();
    }

    private static double doubleKey(JsonNode root, String key, double dflt, String source) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return dflt;
        }
        if (!n.isNumber()) {
            throw new IllegalArgumentException("config " + source + ": '" + key + "' must be a number, found " + n);
        }
        return n.asDouble();
    }

    /** This configuration as Hugging Face {@code config.json} text (sorted keys, pretty-printed). */
    public String toJson() {
        return toJson("BertModel");
    }

    /** Like {@link #toJson()}, with {@code architectures} naming the given model class. */
    public String toJson(String architecture) {
        try {
            return JSON.writeValueAsString(toMap(architecture)) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialise config", e);
        }
    }

    /** The {@code config.json} entries (sorted), with {@code architectures} naming the given model class. */
    public Map<String, Object> toMap(String architecture) {
        Map<String, Object> m = new TreeMap<>();
        m.put("architectures", List.of(architecture));
        m.put("model_type", "bert");
        m.put("vocab_size", vocabSize);
        m.put("hidden_size", hiddenSize);
        m.put("num_hidden_layers", numHiddenLayers);
        m.put("num_attention_heads", numAttentionHeads);
        m.put("intermediate_size", intermediateSize);
        m.put("hidden_act", hiddenAct);
        m.put("hidden_dropout_prob", hiddenDropoutProb);
        m.put("attention_probs_dropout_prob", attentionProbsDropoutProb);
        m.put("max_position_embeddings", maxPositionEmbeddings);
        m.put("type_vocab_size", typeVocabSize);
        m.put("layer_norm_eps", layerNormEps);
        m.put("pad_token_id", padTokenId);
        m.put("position_embedding_type", "absolute");
        m.put("classifier_dropout", classifierDropout);
        m.put("classifier_pooling", classifierPooling.jsonName());
        Map<String, String> id2l = new TreeMap<>();
        Map<String, Integer> l2id = new TreeMap<>();
        for (int i = 0; i < id2label.size(); i++) {
            id2l.put(Integer.toString(i), id2label.get(i));
            l2id.put(id2label.get(i), i);
        }
        m.put("id2label", id2l);
        m.put("label2id", l2id);
        return m;
    }
}
