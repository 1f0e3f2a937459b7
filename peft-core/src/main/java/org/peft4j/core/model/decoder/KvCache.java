package org.peft4j.core.model.decoder;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.Arrays;

/**
 * Per-layer key/value cache for incremental decoding. Keys and values of every layer are kept
 * in buffers {@code [batch, kvHeads, capacity, headDim]} (after rotary embedding, before any
 * grouped-query repetition); a decoding step writes its new {@code T} positions at offset
 * {@link #length()} and reads back views of the first {@code length + T} positions. Capacity
 * grows by doubling, so a long generation copies each buffer only O(log n) times.
 *
 * <p>All layers append the same number of positions per step; the model calls
 * {@link #advance(int)} once after its last layer.
 */
public final class KvCache {
    private final INDArray[] keys;
    private final INDArray[] values;
    private int length;

    public KvCache(int numLayers) {
        if (numLayers <= 0) {
            throw new IllegalArgumentException("numLayers must be positive, found " + numLayers);
        }
        keys = new INDArray[numLayers];
        values = new INDArray[numLayers];
    }

    /** Positions already cached (the same for every layer). */
    public int length() {
        return length;
    }

    public int numLayers() {
        return keys.length;
    }

    /**
     * Stores {@code k}, {@code v} {@code [B, kvH, T, D]} for {@code layer} after the cached
     * positions and returns {@code {keys, values}} of all {@code length + T} positions.
     */
    public INDArray[] append(int layer, INDArray k, INDArray v) {
        if (k.rank() != 4 || !Arrays.equals(k.shape(), v.shape())) {
            throw new IllegalArgumentException("cache expects keys and values [B, kvH, T, D] of equal shape, found "
                    + Arrays.toString(k.shape()) + " and " + Arrays.toString(v.shape()));
        }
        long t = k.size(2);
        long need = length + t;
        INDArray kb = keys[layer];
        if (kb != null && (kb.size(0) != k.size(0) || kb.size(1) != k.size(1) || kb.size(3) != k.size(3))) {
            throw new IllegalArgumentException("layer " + layer + ": new keys " + Arrays.toString(k.shape())
                    + " do not fit the cache " + Arrays.toString(kb.shape()));
        }
        if (kb == null || kb.size(2) < need) {
            long cap = Math.max(need, kb == null ? need : kb.size(2) * 2);
            keys[layer] = grow(kb, k, cap);
            values[layer] = grow(values[layer], v, cap);
        }
        keys[layer].get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(length, need),
                NDArrayIndex.all()).assign(k);
        values[layer].get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(length, need),
                NDArrayIndex.all()).assign(v);
        return new INDArray[]{view(keys[layer], need), view(values[layer], need)};
    }

    private INDArray grow(INDArray old, INDArray like, long cap) {
        INDArray b = Nd4j.zeros(like.dataType(), like.size(0), like.size(1), cap, like.size(3));
        if (old != null && length > 0) {
            view(b, length).assign(view(old, length));
        }
        return b;
    }

    private static INDArray view(INDArray buf, long n) {
        return buf.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(0, n), NDArrayIndex.all());
    }

    /** Marks {@code t} more positions as cached (after every layer appended them). */
    public void advance(int t) {
        length += t;
    }
}
