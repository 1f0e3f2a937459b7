package org.peft4j.core.model;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.nn.KVCache;
import org.peft4j.core.tensor.Tensor;

/**
 * The inputs of {@link Backbone#forward}. Build with {@link #of} and the {@code with…} methods.
 *
 * @param inputEmbeddings {@code [batch, seq, hidden]}: {@link Backbone#embed} of the ids, possibly
 *                        with virtual tokens in front (prompt tuning, P-tuning)
 * @param attentionMask   {@code [batch, keys]} 1 = attend, 0 = padding, over prefix + cached +
 *                        current positions (Hugging Face's {@code attention_mask}); null = all ones
 * @param tokenTypeIds    {@code [batch, seq]} for BERT, null = zeros (ignored by decoders)
 * @param positionOffset  absolute position of the first input token: the number of cached tokens
 *                        plus, for prefix tuning, the prefix length (Hugging Face counts the
 *                        prefix as past key/values)
 * @param prefixKeys      per layer {@code [batch, kvHeads, P, headDim]} or null: used as if already
 *                        in the KV cache (no rotary applied to them); null = no prefix
 * @param prefixValues    same shapes as {@code prefixKeys}
 * @param caches          per-layer KV caches (decoding) or null
 * @param outputHiddenStates return every layer's hidden state
 * @param outputAttentions   return every layer's attention probabilities
 */
public record BackboneInputs(Tensor inputEmbeddings, INDArray attentionMask, INDArray tokenTypeIds, long positionOffset,
                             Tensor[] prefixKeys, Tensor[] prefixValues, KVCache[] caches,
                             boolean outputHiddenStates, boolean outputAttentions) {

    public BackboneInputs {
        if (inputEmbeddings == null || inputEmbeddings.rank() != 3) {
            throw new IllegalArgumentException("input embeddings must be [batch, seq, hidden], got "
                    + (inputEmbeddings == null ? "null" : java.util.Arrays.toString(inputEmbeddings.shape())));
        }
        if (positionOffset < 0) {
            throw new IllegalArgumentException("position offset must be >= 0, got " + positionOffset);
        }
        if ((prefixKeys == null) != (prefixValues == null)) {
            throw new IllegalArgumentException("prefix keys and values must both be given or both be null");
        }
    }

    public static BackboneInputs of(Tensor inputEmbeddings, INDArray attentionMask) {
        return new BackboneInputs(inputEmbeddings, attentionMask, null, 0, null, null, null, false, false);
    }

    public BackboneInputs withInputEmbeddings(Tensor e) {
        return new BackboneInputs(e, attentionMask, tokenTypeIds, positionOffset, prefixKeys, prefixValues, caches,
                outputHiddenStates, outputAttentions);
    }

    public BackboneInputs withAttentionMask(INDArray m) {
        return new BackboneInputs(inputEmbeddings, m, tokenTypeIds, positionOffset, prefixKeys, prefixValues, caches,
                outputHiddenStates, outputAttentions);
    }

    public BackboneInputs withTokenTypeIds(INDArray t) {
        return new BackboneInputs(inputEmbeddings, attentionMask, t, positionOffset, prefixKeys, prefixValues, caches,
                outputHiddenStates, outputAttentions);
    }

    public BackboneInputs withPositionOffset(long offset) {
        return new BackboneInputs(inputEmbeddings, attentionMask, tokenTypeIds, offset, prefixKeys, prefixValues, caches,
                outputHiddenStates, outputAttentions);
    }

    public BackboneInputs withPrefix(Tensor[] keys, Tensor[] values) {
        return new BackboneInputs(inputEmbeddings, attentionMask, tokenTypeIds, positionOffset, keys, values, caches,
                outputHiddenStates, outputAttentions);
    }

    public BackboneInputs withCaches(KVCache[] c) {
        return new BackboneInputs(inputEmbeddings, attentionMask, tokenTypeIds, positionOffset, prefixKeys, prefixValues, c,
                outputHiddenStates, outputAttentions);
    }

    public BackboneInputs withHiddenStates(boolean on) {
        return new BackboneInputs(inputEmbeddings, attentionMask, tokenTypeIds, positionOffset, prefixKeys, prefixValues, caches,
                on, outputAttentions);
    }

    public BackboneInputs withAttentions(boolean on) {
        return new BackboneInputs(inputEmbeddings, attentionMask, tokenTypeIds, positionOffset, prefixKeys, prefixValues, caches,
                outputHiddenStates, on);
    }

    /** Prefix length of a layer (0 when none). */
    public long prefixLength(int layer) {
        return prefixKeys == null || layer >= prefixKeys.length || prefixKeys[layer] == null ? 0 : prefixKeys[layer].size(2);
    }
}
