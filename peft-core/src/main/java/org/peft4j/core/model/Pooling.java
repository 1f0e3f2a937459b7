package org.peft4j.core.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;

/**
 * Reducing token states {@code [batch, seq, hidden]} to one vector per sequence, differentiably:
 * masked mean (sentence-transformers' mean pooling), the first token, and L2 normalisation.
 */
public final class Pooling {
    private Pooling() {
    }

    /**
     * Mean of {@code hidden [B, T, H]} over the positions where {@code attentionMask [B, T]} is
     * non-zero → {@code [B, H]}. A row without any real token gives zeros (the count is clamped
     * to 1e-9, as in sentence-transformers).
     */
    public static Tensor mean(Tensor hidden, INDArray attentionMask) {
        long[] s = hidden.shape();
        if (s.length != 3) {
            throw new IllegalArgumentException("mean pooling needs hidden states [batch, seq, hidden], got " + Arrays.toString(s));
        }
        if (attentionMask.rank() != 2 || attentionMask.size(0) != s[0] || attentionMask.size(1) != s[1]) {
            throw new IllegalArgumentException("attention mask " + Arrays.toString(attentionMask.shape())
                    + " does not match hidden states " + Arrays.toString(s));
        }
        DataType dt = hidden.value().dataType();
        INDArray m = attentionMask.neq(0.0).castTo(dt);                        // [B, T] of 1/0
        INDArray count = m.sum(true, 1);                                        // [B, 1]
        org.nd4j.linalg.ops.transforms.Transforms.max(count, 1e-9, false);
        INDArray w = m.reshape('c', s[0], s[1], 1);                             // [B, T, 1]
        Tensor summed = Ops.sum(Ops.mul(hidden, Tensor.constant(w)), false, 1);  // [B, H]
        return Ops.div(summed, Tensor.constant(count));
    }

    /** The first position's state ({@code [CLS]} for BERT): {@code [B, T, H]} → {@code [B, H]}. */
    public static Tensor first(Tensor hidden) {
        long[] s = hidden.shape();
        if (s.length != 3) {
            throw new IllegalArgumentException("first-token pooling needs [batch, seq, hidden], got " + Arrays.toString(s));
        }
        return Ops.reshape(Ops.slice(hidden, 1, 0, 1), s[0], s[2]);
    }

    /**
     * {@code x / ‖x‖₂} along the last axis. The norm is {@code sqrt(Σx² + 1e-24)}, which equals
     * PyTorch's {@code F.normalize} clamp {@code max(‖x‖, 1e-12)} to fp32 precision for any
     * non-degenerate row and keeps the gradient finite for an all-zero one.
     */
    public static Tensor l2Normalize(Tensor x) {
        Tensor n = Ops.sqrt(Ops.add(Ops.sum(Ops.mul(x, x), true, x.rank() - 1), 1e-24));
        return Ops.div(x, n);
    }
}
