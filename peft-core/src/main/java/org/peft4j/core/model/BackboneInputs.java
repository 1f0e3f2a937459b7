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
 * @param positionOffset  absolute position of the first input token, or {@link #AUTO_POSITION}
 *                        (the default of {@link #of}): the prefix length plus the tokens already
 *                        in the caches, which is what Hugging Face uses when the prefix is passed
 *                        as {@code past_key_values} (it counts the prefix as past). Decoders with
 *                        learned positions (GPT-2) then subtract the padding before each token
 *                        (see {@link #positions})
 * @param prefixKeys      per layer {@code [batch, kvHeads, P, headDim]} or null: used as if already
 *                        in the KV cache (no rotary applied to them, never appended to a cache;
 *                        real tokens see all of them and each other causally); one P for every
 *                        layer; an entry may be null (no prefix for that layer, and then the mask
 *                        must not include prefix columns); null = no prefix. Gradients flow into them
 * @param prefixValues    same shapes as {@code prefixKeys}
 * @param caches          per-layer KV caches (decoding) or null
 * @param outputHiddenStates return every layer's hidden state
 * @param outputAttentions   return every layer's attention probabilities
 */
public record BackboneInputs(Tensor inputEmbeddings, INDArray attentionMask, INDArray tokenTypeIds, long positionOffset,
                             Tensor[] prefixKeys, Tensor[] prefixValues, KVCache[] caches,
                             boolean outputHiddenStates, boolean outputAttentions) {

    /** {@code positionOffset} meaning "prefix length + cached tokens" (see {@link #resolvedPositionOffset}). */
    public static final long AUTO_POSITION = -1;

    public BackboneInputs {
        if (inputEmbeddings == null || inputEmbeddings.rank() != 3) {
            throw new IllegalArgumentException("input embeddings must be [batch, seq, hidden], got "
                    + (inputEmbeddings == null ? "null" : java.util.Arrays.toString(inputEmbeddings.shape())));
        }
        if (positionOffset < 0 && positionOffset != AUTO_POSITION) {
            throw new IllegalArgumentException("position offset must be >= 0 (or AUTO_POSITION), got " + positionOffset);
        }
        if ((prefixKeys == null) != (prefixValues == null)) {
            throw new IllegalArgumentException("prefix keys and values must both be given or both be null");
        }
    }

    public static BackboneInputs of(Tensor inputEmbeddings, INDArray attentionMask) {
        return new BackboneInputs(inputEmbeddings, attentionMask, null, AUTO_POSITION, null, null, null, false, false);
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

    /** The prefix length P shared by every layer that has a prefix (0 when none; {@link #check} enforces one P). */
    public long prefixLength() {
        long p = 0;
        if (prefixKeys != null) {
            for (Tensor k : prefixKeys) {
                if (k != null) {
                    p = Math.max(p, k.size(2));
                }
            }
        }
        return p;
    }

    /** Tokens already in the caches (0 without caches). */
    public long pastLength() {
        return caches == null || caches.length == 0 || caches[0] == null ? 0 : caches[0].length();
    }

    /** {@code positionOffset}, or prefix length + cached tokens when it is {@link #AUTO_POSITION}. */
    public long resolvedPositionOffset() {
        return positionOffset == AUTO_POSITION ? prefixLength() + pastLength() : positionOffset;
    }

    public long batchSize() {
        return inputEmbeddings.size(0);
    }

    public long seqLength() {
        return inputEmbeddings.size(1);
    }

    /**
     * Checks these inputs against {@code b}: embeddings {@code [batch, seq, hiddenSize]}; one cache
     * per layer, all of one length; one prefix entry per layer (entries may be null), each
     * {@code [batch, numKeyValueHeads, P, headDim]} with one P; the mask {@code [batch, P + past + T]}
     * or {@code [batch, past + T]} (non-zero = attend); and offset + T within {@code maxPositions}.
     *
     * @throws IllegalArgumentException naming the offending input and its shape
     */
    public void check(Backbone b) {
        long batch = batchSize();
        long t = seqLength();
        if (batch == 0 || t == 0 || inputEmbeddings.size(2) != b.hiddenSize()) {
            throw new IllegalArgumentException("input embeddings must be a non-empty [batch, seq, " + b.hiddenSize() + "], got "
                    + java.util.Arrays.toString(inputEmbeddings.shape()));
        }
        if (caches != null) {
            if (caches.length != b.numLayers()) {
                throw new IllegalArgumentException("expected " + b.numLayers() + " layer caches, got " + caches.length);
            }
            for (int i = 0; i < caches.length; i++) {
                if (caches[i] == null || caches[i].length() != caches[0].length()) {
                    throw new IllegalArgumentException("layer cache " + i + (caches[i] == null ? " is null"
                            : " holds " + caches[i].length() + " tokens, layer 0's " + caches[0].length()));
                }
            }
        }
        long p = prefixLength();
        if (prefixKeys != null) {
            if (prefixKeys.length != b.numLayers() || prefixValues.length != b.numLayers()) {
                throw new IllegalArgumentException("prefix keys/values must have one entry per layer (" + b.numLayers()
                        + "), got " + prefixKeys.length + " and " + prefixValues.length);
            }
            for (int i = 0; i < prefixKeys.length; i++) {
                Tensor k = prefixKeys[i];
                Tensor v = prefixValues[i];
                if ((k == null) != (v == null)) {
                    throw new IllegalArgumentException("layer " + i + ": prefix keys and values must both be set or both be null");
                }
                if (k == null) {
                    continue;
                }
                long[] want = {batch, b.numKeyValueHeads(), p, b.headDim()};
                if (!java.util.Arrays.equals(k.shape(), want) || !java.util.Arrays.equals(v.shape(), want)) {
                    throw new IllegalArgumentException("layer " + i + ": prefix keys/values must be " + java.util.Arrays.toString(want)
                            + " [batch, kvHeads, P, headDim], got " + java.util.Arrays.toString(k.shape()) + " and "
                            + java.util.Arrays.toString(v.shape()));
                }
            }
        }
        long past = pastLength();
        if (attentionMask != null) {
            long cols = attentionMask.rank() == 2 ? attentionMask.size(1) : -1;
            if (attentionMask.rank() != 2 || attentionMask.size(0) != batch || (cols != p + past + t && cols != past + t)) {
                throw new IllegalArgumentException("attention mask must be [" + batch + ", " + (p + past + t) + "] (prefix " + p
                        + " + cached " + past + " + new " + t + ") or [" + batch + ", " + (past + t) + "], got "
                        + java.util.Arrays.toString(attentionMask.shape()));
            }
            if (p > 0 && cols == p + past + t && cols != past + t) {
                for (int i = 0; i < prefixKeys.length; i++) {
                    if (prefixKeys[i] == null) {
                        throw new IllegalArgumentException("attention mask " + java.util.Arrays.toString(attentionMask.shape())
                                + " covers " + p + " prefix columns but layer " + i + " has no prefix;"
                                + " give every layer a prefix or pass the mask without the prefix columns");
                    }
                }
            }
        }
        long offset = resolvedPositionOffset();
        if (offset + t > b.maxPositions()) {
            throw new IllegalArgumentException("positions " + offset + ".." + (offset + t - 1) + " (offset " + offset + " + " + t
                    + " tokens) exceed the model's " + b.maxPositions() + " positions");
        }
    }

    /**
     * The attention context these inputs describe: padding mask, resolved position offset,
     * prefixes, caches and, with {@code outputAttentions}, recording of {@code numLayers} layers.
     */
    public org.peft4j.core.nn.AttentionContext attentionContext(int numLayers) {
        org.peft4j.core.nn.AttentionContext ctx = org.peft4j.core.nn.AttentionContext.of(attentionMask)
                .withPositionOffset(resolvedPositionOffset()).withPrefix(prefixKeys, prefixValues).withCaches(caches);
        return outputAttentions ? ctx.withAttentionRecording(numLayers) : ctx;
    }

    /**
     * Position ids {@code [batch, T]} for learned position tables: token {@code j} of row {@code b}
     * gets {@code max(0, offset + j − z)} where {@code z} counts the zeros of the mask up to and
     * including that token's column. Without padding this is {@code offset..offset+T−1}
     * (Hugging Face's {@code arange(past_length, past_length + T)}); for a left-padded row each
     * real token gets the number of real tokens before it, plus the prefix (as Hugging Face's
     * {@code generate()} does with {@code cumsum(mask) − 1}).
     */
    public long[][] positions() {
        long offset = resolvedPositionOffset();
        int b = (int) batchSize();
        int t = (int) seqLength();
        long[][] pos = new long[b][t];
        if (attentionMask == null) {
            for (long[] row : pos) {
                for (int j = 0; j < t; j++) {
                    row[j] = offset + j;
                }
            }
            return pos;
        }
        int cols = (int) attentionMask.size(1);
        int first = cols - t;   // the column of the first new token
        long[][] m = attentionMask.castTo(org.nd4j.linalg.api.buffer.DataType.INT64).toLongMatrix();
        for (int i = 0; i < b; i++) {
            long zeros = 0;
            for (int c = 0; c < cols; c++) {
                zeros += m[i][c] == 0 ? 1 : 0;
                if (c >= first) {
                    pos[i][c - first] = Math.max(0, offset + (c - first) - zeros);
                }
            }
        }
        return pos;
    }
}
