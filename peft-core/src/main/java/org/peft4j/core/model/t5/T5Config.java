package org.peft4j.core.model.t5;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.model.decoder.ConfigFields;
import org.peft4j.core.nn.Activation;

import java.util.List;
import java.util.Set;

/**
 * A T5-family config ({@code model_type} {@code t5} or {@code mt5}; v1.0, v1.1 and FLAN-T5 differ
 * only in these fields), read from Hugging Face {@code config.json} keys.
 *
 * @param modelType                    {@code t5} or {@code mt5}
 * @param vocabSize                    {@code vocab_size}
 * @param dModel                       {@code d_model}
 * @param dKv                          {@code d_kv}: per-head size (inner dim = numHeads · dKv, may differ from d_model)
 * @param dFf                          {@code d_ff}
 * @param numLayers                    {@code num_layers} (encoder)
 * @param numDecoderLayers             {@code num_decoder_layers} (default num_layers)
 * @param numHeads                     {@code num_heads}
 * @param relativeAttentionNumBuckets  {@code relative_attention_num_buckets} (32)
 * @param relativeAttentionMaxDistance {@code relative_attention_max_distance} (128)
 * @param dropoutRate                  {@code dropout_rate} (0.1)
 * @param layerNormEpsilon             {@code layer_norm_epsilon} (1e-6)
 * @param initializerFactor            {@code initializer_factor} (1.0)
 * @param feedForwardProj              {@code feed_forward_proj}: {@code relu}, {@code gated-gelu}, or
 *                                     {@code [gated-]<act>} for any supported activation
 * @param tieWordEmbeddings            {@code tie_word_embeddings} (t5: true, mt5: false)
 * @param padTokenId                   {@code pad_token_id} (0)
 * @param eosTokenIds                  {@code eos_token_id} (1; int or list)
 * @param decoderStartTokenId          {@code decoder_start_token_id} (0 when absent, as HF; null when the config sets
 *                                     it to null: generation and labels then refuse)
 * @param nPositions                   {@code n_positions} (hub T5 configs carry 512) or null: the longest encoder or
 *                                     decoder input accepted; T5's relative positions have no table, so without it
 *                                     there is no limit
 */
public record T5Config(String modelType, int vocabSize, int dModel, int dKv, int dFf, int numLayers, int numDecoderLayers,
                       int numHeads, int relativeAttentionNumBuckets, int relativeAttentionMaxDistance, double dropoutRate,
                       double layerNormEpsilon, double initializerFactor, String feedForwardProj, boolean tieWordEmbeddings,
                       int padTokenId, List<Integer> eosTokenIds, Integer decoderStartTokenId, Integer nPositions) {

    static final Set<String> MODEL_TYPES = Set.of("t5", "mt5");

    public T5Config {
        if (!MODEL_TYPES.contains(modelType)) {
            throw new IllegalArgumentException("unsupported model_type '" + modelType + "' (supported: " + MODEL_TYPES + ")");
        }
        if (vocabSize <= 0 || dModel <= 0 || dKv <= 0 || dFf <= 0 || numLayers <= 0 || numDecoderLayers <= 0 || numHeads <= 0
                || relativeAttentionNumBuckets < 2 || relativeAttentionMaxDistance <= 0) {
            throw new IllegalArgumentException("T5 sizes must be positive: vocab_size=" + vocabSize + " d_model=" + dModel
                    + " d_kv=" + dKv + " d_ff=" + dFf + " num_layers=" + numLayers + " num_decoder_layers=" + numDecoderLayers
                    + " num_heads=" + numHeads + " relative_attention_num_buckets=" + relativeAttentionNumBuckets
                    + " (>= 2) relative_attention_max_distance=" + relativeAttentionMaxDistance);
        }
        if (!(dropoutRate >= 0 && dropoutRate < 1)) {
            throw new IllegalArgumentException("dropout_rate must be in [0, 1), found " + dropoutRate);
        }
        Activation.kindOf(activation(feedForwardProj));
        if (nPositions != null && nPositions <= 0) {
            throw new IllegalArgumentException("n_positions must be positive, found " + nPositions);
        }
        eosTokenIds = List.copyOf(eosTokenIds);
    }

    /** Whether the feed-forward is gated ({@code wi_0}, {@code wi_1}, {@code wo}) rather than {@code wi}, {@code wo}. */
    public boolean isGated() {
        return feedForwardProj.startsWith("gated-");
    }

    /** The feed-forward activation's Hugging Face name ({@code gated-gelu} means {@code gelu_new}, as HF's T5Config). */
    public String denseActivation() {
        return activation(feedForwardProj);
    }

    private static String activation(String proj) {
        if (proj == null) {
            throw new IllegalArgumentException("feed_forward_proj must not be null");
        }
        if (proj.equals("gated-gelu")) {
            return "gelu_new";
        }
        String act = proj.startsWith("gated-") ? proj.substring(6) : proj;
        if (act.isEmpty() || act.contains("-")) {
            throw new IllegalArgumentException("feed_forward_proj '" + proj
                    + "' is not of the form '[gated-]<activation>' (e.g. relu, gated-gelu)");
        }
        return act;
    }

    /** The longest input the model accepts ({@code n_positions}, or unlimited). */
    public int maxPositions() {
        return nPositions == null ? Integer.MAX_VALUE / 4 : nPositions;
    }

    /** The attention's inner width {@code num_heads · d_kv}. */
    public int innerDim() {
        return numHeads * dKv;
    }

    /**
     * Required: {@code d_model, d_ff, num_layers, num_heads, d_kv, vocab_size}. Defaults follow
     * HF's {@code T5Config} / {@code MT5Config}.
     */
    public static T5Config fromFields(ConfigFields f) {
        String type = f.optString("t5", "model_type");
        f.require(MODEL_TYPES.contains(type), "unsupported model_type '" + type + "' (supported: " + MODEL_TYPES + ")");
        int vocab = f.requiredInt("vocab_size");
        int d = f.requiredInt("d_model");
        int dkv = f.requiredInt("d_kv");
        int dff = f.requiredInt("d_ff");
        int layers = f.requiredInt("num_layers");
        int heads = f.requiredInt("num_heads");
        f.checkRequired(type);
        String proj = f.optString(type.equals("mt5") ? "gated-gelu" : "relu", "feed_forward_proj");
        try {
            activation(proj);
            Activation.kindOf(activation(proj));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(f.source() + ": feed_forward_proj: " + e.getMessage(), e);
        }
        List<Integer> eos = f.optIntList("eos_token_id");
        if (!f.node().has("eos_token_id")) {
            eos = List.of(1);
        }
        return new T5Config(type, vocab, d, dkv, dff, layers, f.optInt(layers, "num_decoder_layers"), heads,
                f.optInt(32, "relative_attention_num_buckets"), f.optInt(128, "relative_attention_max_distance"),
                f.optDouble(0.1, "dropout_rate"), f.optDouble(1e-6, "layer_norm_epsilon"),
                f.optDouble(1.0, "initializer_factor"), proj, f.optBoolean(!type.equals("mt5"), "tie_word_embeddings"),
                f.optInt(0, "pad_token_id"), eos, f.node().has("decoder_start_token_id") ? f.optInteger("decoder_start_token_id")
                        : Integer.valueOf(0), f.optInteger("n_positions"));
    }

    /** The decoder start token, or an error naming the config key when the config has none. */
    public int requireDecoderStartTokenId() {
        if (decoderStartTokenId == null) {
            throw new IllegalArgumentException("the T5 config has no decoder_start_token_id (it is null);"
                    + " set decoder_start_token_id in config.json (T5 uses the pad token, 0)");
        }
        return decoderStartTokenId;
    }

    /** The HF {@code config.json} fields of this config, written over {@code base} (kept for unknown keys). */
    public ObjectNode toJson(ObjectNode base) {
        ObjectNode n = base == null ? ConfigFields.mapper().createObjectNode() : base.deepCopy();
        n.put("model_type", modelType);
        if (!n.has("architectures")) {
            n.putArray("architectures").add(modelType.equals("mt5") ? "MT5ForConditionalGeneration" : "T5ForConditionalGeneration");
        }
        n.put("vocab_size", vocabSize);
        n.put("d_model", dModel);
        n.put("d_kv", dKv);
        n.put("d_ff", dFf);
        n.put("num_layers", numLayers);
        n.put("num_decoder_layers", numDecoderLayers);
        n.put("num_heads", numHeads);
        n.put("relative_attention_num_buckets", relativeAttentionNumBuckets);
        n.put("relative_attention_max_distance", relativeAttentionMaxDistance);
        n.put("dropout_rate", dropoutRate);
        n.put("layer_norm_epsilon", layerNormEpsilon);
        n.put("initializer_factor", initializerFactor);
        n.put("feed_forward_proj", feedForwardProj);
        n.put("tie_word_embeddings", tieWordEmbeddings);
        n.put("is_encoder_decoder", true);
        n.put("pad_token_id", padTokenId);
        if (decoderStartTokenId == null) {
            n.putNull("decoder_start_token_id");
        } else {
            n.put("decoder_start_token_id", decoderStartTokenId);
        }
        if (nPositions != null) {
            n.put("n_positions", nPositions);
        }
        ConfigFields.putTokenIds(n, null, eosTokenIds);
        return n;
    }
}
