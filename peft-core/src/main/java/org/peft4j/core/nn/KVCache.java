package org.peft4j.core.nn;

import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.tensor.GradMode;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;

/**
 * One attention layer's key/value cache for incremental decoding: keys and values
 * {@code [batch, kvHeads, len, headDim]} of every token seen so far (after rotary, before any
 * external prefix, which is not cached).
 *
 * <p>Storage is a pair of buffers with spare capacity along the length axis (doubled when full),
 * so appending one token copies only that token; {@link #append} returns views of the filled part.
 *
 * <p>Meant for inference under {@link org.peft4j.core.tensor.NoGrad}. When gradients are being
 * recorded and the new keys need them, the returned tensors are {@code concat(cached, new)}:
 * gradients reach this step's keys/values, the earlier ones are constants.
 */
public final class KVCache {
    private INDArray keys;
    private INDArray values;
    private long length;

    /** Current number of cached positions. */
    public long length() {
        return length;
    }

    /** Forgets everything (a new sequence). */
    public void reset() {
        keys = null;
        values = null;
        length = 0;
    }

    /** Allocated capacity along the length axis. */
    public long capacity() {
        return keys == null ? 0 : keys.size(2);
    }

    /** The cached keys {@code [B, Hkv, len, D]} (a view), or null when empty. */
    public INDArray keys() {
        return length == 0 ? null : lengthView(keys, length);
    }

    /** The cached values {@code [B, Hkv, len, Dv]} (a view), or null when empty. */
    public INDArray values() {
        return length == 0 ? null : lengthView(values, length);
    }

    /**
     * Appends {@code k [B, Hkv, T, D]} and {@code v [B, Hkv, T, Dv]} and returns the keys and values
     * of all positions so far, {@code [B, Hkv, len+T, ·]}.
     */
    public Tensor[] append(Tensor k, Tensor v) {
        INDArray kv = k.value();
        INDArray vv = v.value();
        if (kv.rank() != 4 || vv.rank() != 4 || kv.size(0) != vv.size(0) || kv.size(1) != vv.size(1) || kv.size(2) != vv.size(2)) {
            throw new IllegalArgumentException("KV cache append needs k [B,Hkv,T,D] and v [B,Hkv,T,Dv] of equal T, got k "
                    + Arrays.toString(kv.shape()) + ", v " + Arrays.toString(vv.shape()));
        }
        long t = kv.size(2);
        if (keys != null) {
            if (keys.size(0) != kv.size(0) || keys.size(1) != kv.size(1) || keys.size(3) != kv.size(3)
                    || values.size(3) != vv.size(3) || keys.dataType() != kv.dataType()) {
                throw new IllegalArgumentException("KV cache holds keys " + Arrays.toString(lengthView(keys, length).shape())
                        + " (" + keys.dataType() + "), cannot append " + Arrays.toString(kv.shape()) + " (" + kv.dataType()
                        + "); reset() between sequences");
            }
        }
        INDArray pastK = keys();
        INDArray pastV = values();
        ensureCapacity(kv, vv, length + t);
        lengthRange(keys, length, length + t).assign(kv);
        lengthRange(values, length, length + t).assign(vv);
        long past = length;
        length += t;
        boolean track = GradMode.isEnabled() && (k.requiresGrad() || v.requiresGrad());
        if (track && past > 0) {
            return new Tensor[]{
                    Ops.concat(2, Tensor.constant(pastK), k),
                    Ops.concat(2, Tensor.constant(pastV), v)};
        }
        if (track) {
            return new Tensor[]{k, v};
        }
        return new Tensor[]{Tensor.constant(lengthView(keys, length)), Tensor.constant(lengthView(values, length))};
    }

    /**
     * Keeps batch rows {@code rows} in that order (repeats allowed, so the batch may grow): beam
     * search reorders and expands its hypotheses' caches with it.
     */
    public void selectRows(long[] rows) {
        if (keys == null) {
            return;
        }
        for (long r : rows) {
            if (r < 0 || r >= keys.size(0)) {
                throw new IllegalArgumentException("KV cache row " + r + " outside [0, " + keys.size(0) + ")");
            }
        }
        INDArrayIndex all = NDArrayIndex.all();
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            INDArrayIndex sel = NDArrayIndex.indices(rows);
            keys = keys.get(sel, all, all, all).dup('c');
            values = values.get(NDArrayIndex.indices(rows), all, all, all).dup('c');
        }
    }

    private void ensureCapacity(INDArray kv, INDArray vv, long needed) {
        long cap = capacity();
        if (needed <= cap) {
            return;
        }
        long newCap = Math.max(16, cap);
        while (newCap < needed) {
            newCap *= 2;
        }
        INDArray nk;
        INDArray nv;
        // the cache outlives any per-step workspace
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            nk = Nd4j.createUninitialized(kv.dataType(), kv.size(0), kv.size(1), newCap, kv.size(3));
            nv = Nd4j.createUninitialized(vv.dataType(), vv.size(0), vv.size(1), newCap, vv.size(3));
        }
        if (length > 0) {
            lengthView(nk, length).assign(lengthView(keys, length));
            lengthView(nv, length).assign(lengthView(values, length));
        }
        keys = nk;
        values = nv;
    }

    private static INDArray lengthView(INDArray buf, long len) {
        return lengthRange(buf, 0, len);
    }

    private static INDArray lengthRange(INDArray buf, long from, long to) {
        INDArrayIndex all = NDArrayIndex.all();
        return buf.get(all, all, NDArrayIndex.interval(from, to), all);
    }
}
