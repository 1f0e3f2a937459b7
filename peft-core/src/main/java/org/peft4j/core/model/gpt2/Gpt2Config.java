package org.peft4j.core.model.gpt2;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.model.decoder.ConfigFields;

import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * GPT-2 hyper-parameters under their Hugging Face {@code config.json} names.
 *
 * @param vocabSize          {@code vocab_size}
 * @param nPositions         {@code n_positions} (learned position table size = longest sequence)
 * @param nEmbd              {@code n_embd} (hidden size)
 * @param nLayer             {@code n_layer}
 * @param nHead              {@code n_head}
 * @param nInner             {@code n_inner}, resolved to {@code 4 * n_embd} when null
 * @param activationFunction {@code activation_function}: gelu_new (default), gelu_pytorch_tanh, gelu, relu, silu
 * @param layerNormEpsilon   {@code layer_norm_epsilon} (1e-5)
 * @param tieWordEmbeddings  {@code tie_word_embeddings} (true: lm_head shares wte)
 * @param scaleAttnWeights   {@code scale_attn_weights} (true: scores / sqrt(head_dim))
 * @param residPdrop         {@code resid_pdrop} (0.1): dropout after each sub-layer, in training mode
 * @param embdPdrop          {@code embd_pdrop} (0.1): dropout on the embeddings, in training mode
 * @param attnPdrop          {@code attn_pdrop} (0.1): dropout on the attention weights, in training mode
 * @param initializerRange   {@code initializer_range} (0.02): std of the normal init of a fresh model
 * @param bosTokenId         {@code bos_token_id} or null
 * @param eosTokenIds        {@code eos_token_id} (empty when absent)
 */
public record Gpt2Config(int vocabSize, int nPositions, int nEmbd, int nLayer, int nHead, int nInner,
                         String activationFunction, double layerNormEpsilon, boolean tieWordEmbeddings,
                         boolean scaleAttnWeights, double residPdrop, double embdPdrop, double attnPdrop,
                         double initializerRange, Integer bosTokenId, List<Integer> eosTokenIds) {

    static final Set<String> ACTIVATIONS = Set.of("gelu_new", "gelu_pytorch_tanh", "gelu", "relu", "silu", "swish");

    public Gpt2Config {
        if (vocabSize <= 0 || nPositions <= 0 || nEmbd <= 0 || nLayer <= 0 || nHead <= 0 || nInner <= 0) {
            throw new IllegalArgumentException("GPT-2 sizes must be positive: vocab_size=" + vocabSize + " n_positions="
                    + nPositions + " n_embd=" + nEmbd + " n_layer=" + nLayer + " n_head=" + nHead + " n_inner=" + nInner);
        }
        if (nEmbd % nHead != 0) {
            throw new IllegalArgumentException("GPT-2 n_embd " + nEmbd + " is not divisible by n_head " + nHead);
        }
        if (!ACTIVATIONS.contains(activationFunction)) {
            throw new IllegalArgumentException("unsupported GPT-2 activation_function '" + activationFunction
                    + "' (supported: " + ACTIVATIONS + ")");
        }
        for (double p : new double[]{residPdrop, embdPdrop, attnPdrop}) {
            if (!(p >= 0 && p < 1)) {
                throw new IllegalArgumentException("GPT-2 dropout probabilities must be in [0, 1): resid_pdrop="
                        + residPdrop + " embd_pdrop=" + embdPdrop + " attn_pdrop=" + attnPdrop);
            }
        }
        if (!(initializerRange > 0)) {
            throw new IllegalArgumentException("initializer_range must be positive, found " + initializerRange);
        }
        eosTokenIds = List.copyOf(eosTokenIds);
    }

    /** A config with every dropout probability set to {@code p} (0 for deterministic training tests). */
    public Gpt2Config withDropout(double p) {
        return new Gpt2Config(vocabSize, nPositions, nEmbd, nLayer, nHead, nInner, activationFunction, layerNormEpsilon,
                tieWordEmbeddings, scaleAttnWeights, p, p, p, initializerRange, bosTokenId, eosTokenIds);
    }

    public int headDim() {
        return nEmbd / nHead;
    }

    /** Reads {@code config.json}; see {@link #fromFields}. */
    public static Gpt2Config load(Path configJson) {
        return fromFields(ConfigFields.read(configJson));
    }

    /**
     * Required: {@code vocab_size, n_positions, n_embd, n_layer, n_head} (HF aliases
     * {@code max_position_embeddings, hidden_size, num_hidden_layers, num_attention_heads} accepted).
     * Features this implementation does not have (cross-attention, layer-index attention scaling)
     * are rejected rather than silently ignored.
     */
    public static Gpt2Config fromFields(ConfigFields f) {
        String type = f.optString("gpt2", "model_type");
        f.require(type.equals("gpt2"), "model_type '" + type + "' is not gpt2");
        int vocab = f.requiredInt("vocab_size");
        int pos = f.requiredInt("n_positions", "max_position_embeddings");
        int embd = f.requiredInt("n_embd", "hidden_size");
        int layers = f.requiredInt("n_layer", "num_hidden_layers");
        int heads = f.requiredInt("n_head", "num_attention_heads");
        f.checkRequired("GPT-2");
        f.require(!f.optBoolean(false, "add_cross_attention"), "add_cross_attention is not supported");
        f.require(!f.optBoolean(false, "scale_attn_by_inverse_layer_idx"),
                "scale_attn_by_inverse_layer_idx=true is not supported");
        Integer inner = f.optInteger("n_inner");
        return new Gpt2Config(vocab, pos, embd, layers, heads, inner == null ? 4 * embd : inner,
                f.optString("gelu_new", "activation_function"), f.optDouble(1e-5, "layer_norm_epsilon"),
                f.optBoolean(true, "tie_word_embeddings"), f.optBoolean(true, "scale_attn_weights"),
                f.optDouble(0.1, "resid_pdrop"), f.optDouble(0.1, "embd_pdrop"), f.optDouble(0.1, "attn_pdrop"),
                f.optDouble(0.02, "initializer_range"), f.optInteger("bos_token_id"), f.optIntList("eos_token_id"));
    }

    /** The HF {@code config.json} fields of this config, written over {@code base} (kept for unknown keys). */
    public ObjectNode toJson(ObjectNode base) {
        ObjectNode n = base == null ? ConfigFields.mapper().createObjectNode() : base.deepCopy();
        n.put("model_type", "gpt2");
        if (!n.has("architectures")) {
            n.putArray("architectures").add("GPT2LMHeadModel");
        }
        n.put("vocab_size", vocabSize);
        n.put("n_positions", nPositions);
        n.put("n_embd", nEmbd);
        n.put("n_layer", nLayer);
        n.put("n_head", nHead);
        if (nInner == 4 * nEmbd && (base == null || !base.hasNonNull("n_inner"))) {
            n.putNull("n_inner");
        } else {
            n.put("n_inner", nInner);
        }
        n.put("activation_function", activationFunction);
        n.put("layer_norm_epsilon", layerNormEpsilon);
        n.put("tie_word_embeddings", tieWordEmbeddings);
        n.put("scale_attn_weights", scaleAttnWeights);
        n.put("resid_pdrop", residPdrop);
        n.put("embd_pdrop", embdPdrop);
        n.put("attn_pdrop", attnPdrop);
        n.put("initializer_range", initializerRange);
        ConfigFields.putTokenIds(n, bosTokenId, eosTokenIds);
        return n;
    }
}
