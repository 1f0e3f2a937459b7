package org.peft4j.core.model.llama;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.model.decoder.ConfigFields;

import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * Hyper-parameters of the LLaMA family (LLaMA 1–3 without rope scaling, Mistral, Qwen2,
 * SmolLM/TinyLlama-style configs) under their Hugging Face {@code config.json} names.
 *
 * @param modelType             {@code model_type}: llama, mistral or qwen2
 * @param vocabSize             {@code vocab_size}
 * @param hiddenSize            {@code hidden_size}
 * @param intermediateSize      {@code intermediate_size} (SwiGLU width)
 * @param numHiddenLayers       {@code num_hidden_layers}
 * @param numAttentionHeads     {@code num_attention_heads}
 * @param numKeyValueHeads      {@code num_key_value_heads} (defaults to the attention heads; fewer = GQA)
 * @param headDim               {@code head_dim} (defaults to hidden / heads; may differ)
 * @param rmsNormEps            {@code rms_norm_eps}
 * @param ropeTheta             {@code rope_theta} (or {@code rope_parameters.rope_theta})
 * @param maxPositionEmbeddings {@code max_position_embeddings}: longest accepted sequence
 * @param tieWordEmbeddings     {@code tie_word_embeddings}
 * @param attentionBias         {@code attention_bias} as written (LLaMA/Mistral: bias on q, k, v and o)
 * @param mlpBias               {@code mlp_bias}
 * @param slidingWindow         Mistral {@code sliding_window} (Qwen2 only with {@code use_sliding_window}), or null;
 *                              sequences longer than the window are rejected (no sliding-window masking)
 * @param attentionDropout      {@code attention_dropout} (0.0), applied to attention weights in training mode
 * @param initializerRange      {@code initializer_range} (0.02): std of the normal init of a fresh model
 * @param bosTokenId            {@code bos_token_id} or null
 * @param eosTokenIds           {@code eos_token_id} (int or list; empty when absent)
 */
public record LlamaConfig(String modelType, int vocabSize, int hiddenSize, int intermediateSize, int numHiddenLayers,
                          int numAttentionHeads, int numKeyValueHeads, int headDim, double rmsNormEps,
                          double ropeTheta, int maxPositionEmbeddings, boolean tieWordEmbeddings,
                          boolean attentionBias, boolean mlpBias, Integer slidingWindow, double attentionDropout,
                          double initializerRange, Integer bosTokenId, List<Integer> eosTokenIds) {

    static final Set<String> MODEL_TYPES = Set.of("llama", "mistral", "qwen2");

    public LlamaConfig {
        if (!MODEL_TYPES.contains(modelType)) {
            throw new IllegalArgumentException("unsupported model_type '" + modelType + "' (supported: " + MODEL_TYPES + ")");
        }
        if (vocabSize <= 0 || hiddenSize <= 0 || intermediateSize <= 0 || numHiddenLayers <= 0
                || numAttentionHeads <= 0 || numKeyValueHeads <= 0 || headDim <= 0 || maxPositionEmbeddings <= 0) {
            throw new IllegalArgumentException("LLaMA sizes must be positive: vocab_size=" + vocabSize + " hidden_size="
                    + hiddenSize + " intermediate_size=" + intermediateSize + " num_hidden_layers=" + numHiddenLayers
                    + " num_attention_heads=" + numAttentionHeads + " num_key_value_heads=" + numKeyValueHeads
                    + " head_dim=" + headDim + " max_position_embeddings=" + maxPositionEmbeddings);
        }
        if (numAttentionHeads % numKeyValueHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads " + numAttentionHeads
                    + " is not a multiple of num_key_value_heads " + numKeyValueHeads);
        }
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim " + headDim + " must be even for rotary embeddings");
        }
        if (slidingWindow != null && slidingWindow <= 0) {
            throw new IllegalArgumentException("sliding_window must be positive, found " + slidingWindow);
        }
        if (!(attentionDropout >= 0 && attentionDropout < 1)) {
            throw new IllegalArgumentException("attention_dropout must be in [0, 1), found " + attentionDropout);
        }
        if (!(initializerRange > 0)) {
            throw new IllegalArgumentException("initializer_range must be positive, found " + initializerRange);
        }
        eosTokenIds = List.copyOf(eosTokenIds);
    }

    /** Query heads per key/value head (1 = plain multi-head attention). */
    public int groupSize() {
        return numAttentionHeads / numKeyValueHeads;
    }

    /** q, k and v projections carry a bias (always for Qwen2). */
    public boolean qkvBias() {
        return modelType.equals("qwen2") || attentionBias;
    }

    /** The output projection carries a bias (LLaMA/Mistral with attention_bias; never Qwen2). */
    public boolean outputBias() {
        return !modelType.equals("qwen2") && attentionBias;
    }

    public static LlamaConfig load(Path configJson) {
        return fromFields(ConfigFields.read(configJson));
    }

    /**
     * Required: {@code vocab_size, hidden_size, intermediate_size, num_hidden_layers,
     * num_attention_heads}. Defaults follow the HF config classes of each model type. Rope scaling
     * other than the default, and activations other than SiLU, are rejected.
     */
    public static LlamaConfig fromFields(ConfigFields f) {
        String type = f.optString("llama", "model_type");
        f.require(MODEL_TYPES.contains(type), "unsupported model_type '" + type + "' (supported: " + MODEL_TYPES + ")");
        int vocab = f.requiredInt("vocab_size");
        int hidden = f.requiredInt("hidden_size");
        int inter = f.requiredInt("intermediate_size");
        int layers = f.requiredInt("num_hidden_layers");
        int heads = f.requiredInt("num_attention_heads");
        f.checkRequired(type);
        int kv = f.optInt(heads, "num_key_value_heads");
        f.require(heads > 0 && (f.has("head_dim") || hidden % heads == 0),
                "hidden_size " + hidden + " is not divisible by num_attention_heads " + heads + " and no head_dim is given");
        int headDim = f.optInt(heads > 0 ? hidden / heads : 0, "head_dim");
        String act = f.optString("silu", "hidden_act");
        f.require(act.equals("silu") || act.equals("swish"), "unsupported hidden_act '" + act + "' (only silu)");
        JsonNode scaling = f.raw("rope_scaling");
        if (scaling != null) {
            String rt = scaling.path("rope_type").asText(scaling.path("type").asText("default"));
            f.require(rt.equals("default"), "rope_scaling of type '" + rt + "' is not supported");
        }
        double theta = f.optDouble(Double.NaN, "rope_theta");
        if (Double.isNaN(theta)) {
            JsonNode rp = f.raw("rope_parameters");
            if (rp != null && rp.hasNonNull("rope_type")) {
                f.require(rp.get("rope_type").asText().equals("default"),
                        "rope_parameters.rope_type '" + rp.get("rope_type").asText() + "' is not supported");
            }
            theta = rp != null && rp.hasNonNull("rope_theta") ? rp.get("rope_theta").asDouble() : 10000.0;
        }
        int defaultMaxPos = switch (type) {
            case "mistral" -> 4096 * 32;
            case "qwen2" -> 32768;
            default -> 2048;
        };
        Integer window = null;
        if (type.equals("mistral")) {
            window = f.has("sliding_window") ? f.optInteger("sliding_window")
                    : (f.node().has("sliding_window") ? null : Integer.valueOf(4096));
        } else if (type.equals("qwen2") && f.optBoolean(false, "use_sliding_window")) {
            window = f.optInt(4096, "sliding_window");
        }
        return new LlamaConfig(type, vocab, hidden, inter, layers, heads, kv, headDim,
                f.optDouble(1e-6, "rms_norm_eps"), theta, f.optInt(defaultMaxPos, "max_position_embeddings"),
                f.optBoolean(false, "tie_word_embeddings"), f.optBoolean(false, "attention_bias"),
                f.optBoolean(false, "mlp_bias"), window, f.optDouble(0.0, "attention_dropout"),
                f.optDouble(0.02, "initializer_range"), f.optInteger("bos_token_id"), f.optIntList("eos_token_id"));
    }

    /** The HF {@code config.json} fields of this config, written over {@code base} (kept for unknown keys). */
    public ObjectNode toJson(ObjectNode base) {
        ObjectNode n = base == null ? ConfigFields.mapper().createObjectNode() : base.deepCopy();
        n.put("model_type", modelType);
        if (!n.has("architectures")) {
            String arch = switch (modelType) {
                case "mistral" -> "MistralForCausalLM";
                case "qwen2" -> "Qwen2ForCausalLM";
                default -> "LlamaForCausalLM";
            };
            n.putArray("architectures").add(arch);
        }
        n.put("vocab_size", vocabSize);
        n.put("hidden_size", hiddenSize);
        n.put("intermediate_size", intermediateSize);
        n.put("num_hidden_layers", numHiddenLayers);
        n.put("num_attention_heads", numAttentionHeads);
        n.put("num_key_value_heads", numKeyValueHeads);
        n.put("head_dim", headDim);
        n.put("rms_norm_eps", rmsNormEps);
        n.put("rope_theta", ropeTheta);
        n.put("max_position_embeddings", maxPositionEmbeddings);
        n.put("tie_word_embeddings", tieWordEmbeddings);
        n.put("attention_bias", attentionBias);
        n.put("mlp_bias", mlpBias);
        n.put("hidden_act", "silu");
        n.put("attention_dropout", attentionDropout);
        n.put("initializer_range", initializerRange);
        if (modelType.equals("mistral")) {
            if (slidingWindow == null) {
                n.putNull("sliding_window");
            } else {
                n.put("sliding_window", slidingWindow);
            }
        } else if (modelType.equals("qwen2")) {
            n.put("use_sliding_window", slidingWindow != null);
            if (slidingWindow != null) {
                n.put("sliding_window", slidingWindow);
            }
        }
        ConfigFields.putTokenIds(n, bosTokenId, eosTokenIds);
        return n;
    }
}
