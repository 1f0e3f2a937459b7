package org.peft4j.core.tensor;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;

/**
 * Which keys each query may attend to, for scores of shape {@code [batch, heads, T, S]}.
 *
 * <p>The key axis is laid out as {@code [prefix keys (P) | earlier keys (cache) | current keys]}.
 * Three rules combine (a key is visible only if every rule allows it):
 * <ul>
 *   <li>causal with offset: query {@code t} (absolute position {@code offset + t} among the
 *       non-prefix keys) sees non-prefix key {@code j} only if {@code j <= offset + t}. With a KV
 *       cache holding {@code n} earlier keys, {@code offset = n};</li>
 *   <li>key padding {@code [batch, S - P]} (or {@code [batch, S]} including the prefix):
 *       non-zero keeps the key, zero hides it (Hugging Face's {@code attention_mask});</li>
 *   <li>prefix keys (prefix tuning) are always visible unless a padding mask that covers them says otherwise.</li>
 * </ul>
 * A masked score is replaced by {@link #MASKED_SCORE} (not added to), so a row whose keys are all
 * masked gets a uniform distribution instead of NaN — the same result as Hugging Face's
 * dtype-minimum additive mask — and receives no gradient.
 */
public final class AttentionMask {
    /** The value a masked score is set to before the softmax. */
    public static final double MASKED_SCORE = -1e9;

    private static final AttentionMask NONE = new AttentionMask(false, 0, null, 0);

    private final boolean causal;
    private final long causalOffset;
    private final INDArray keyPadding;
    private final long prefixLength;

    private AttentionMask(boolean causal, long causalOffset, INDArray keyPadding, long prefixLength) {
        this.causal = causal;
        this.causalOffset = causalOffset;
        this.keyPadding = keyPadding;
        this.prefixLength = prefixLength;
    }

    /** Every query sees every key (BERT without padding). */
    public static AttentionMask bidirectional() {
        return NONE;
    }

    /** Causal; query {@code t} sees non-prefix keys {@code 0..offset+t}. */
    public static AttentionMask causal(long offset) {
        if (offset < 0) {
            throw new IllegalArgumentException("causal offset must be >= 0, got " + offset);
        }
        return new AttentionMask(true, offset, null, 0);
    }

    /** The same mask plus a key padding mask {@code [batch, keys]} (non-zero = keep); null removes it. */
    public AttentionMask withKeyPadding(INDArray mask) {
        if (mask != null && mask.rank() != 2) {
            throw new IllegalArgumentException("key padding mask must be [batch, keys], got shape " + Arrays.toString(mask.shape()));
        }
        return new AttentionMask(causal, causalOffset, mask, prefixLength);
    }

    /** The same mask with {@code p} always-visible prefix keys in front of the others. */
    public AttentionMask withPrefix(long p) {
        if (p < 0) {
            throw new IllegalArgumentException("prefix length must be >= 0, got " + p);
        }
        return new AttentionMask(causal, causalOffset, keyPadding, p);
    }

    public boolean isCausal() {
        return causal;
    }

    public long causalOffset() {
        return causalOffset;
    }

    public INDArray keyPadding() {
        return keyPadding;
    }

    public long prefixLength() {
        return prefixLength;
    }

    /** True when no key is ever masked, whatever the shapes. */
    public boolean isTrivial() {
        return !causal && keyPadding == null;
    }

    /**
     * The masks for scores {@code [batch, heads, T, S]}: {@code keep} (1/0) and {@code fill}
     * ({@link #MASKED_SCORE} where masked, else 0), both {@code [batch or 1, 1, T or 1, S]} in
     * {@code dtype}, so {@code scores·keep + fill} applies the mask by broadcasting over heads.
     * Null when nothing is masked.
     */
    Built build(long batch, long t, long s, DataType dtype) {
        if (isTrivial()) {
            return null;
        }
        Memo m = memo;
        if (m != null && m.batch == batch && m.t == t && m.s == s && m.dtype == dtype) {
            return m.built;
        }
        Built built;
        // memoised across forward passes: keep it out of any per-step workspace
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            built = compute(batch, t, s, dtype);
        }
        memo = new Memo(batch, t, s, dtype, built);
        return built;
    }

    /** The last mask built, reused when every layer of a forward pass asks for the same shape. */
    private record Memo(long batch, long t, long s, DataType dtype, Built built) {
    }

    private volatile Memo memo;

    private Built compute(long batch, long t, long s, DataType dtype) {
        long p = prefixLength;
        if (p > s) {
            throw new IllegalArgumentException("prefix length " + p + " exceeds the number of keys " + s);
        }
        double[][] pad = null;
        long padOffset = 0;  // key index of the padding mask's first column
        if (keyPadding != null) {
            long b = keyPadding.size(0);
            long len = keyPadding.size(1);
            if (b != batch) {
                throw new IllegalArgumentException("key padding mask " + Arrays.toString(keyPadding.shape())
                        + " has batch " + b + ", scores have batch " + batch);
            }
            if (len == s - p) {
                padOffset = p;
            } else if (len == s) {
                padOffset = 0;
            } else {
                throw new IllegalArgumentException("key padding mask " + Arrays.toString(keyPadding.shape())
                        + " must cover " + (s - p) + " keys (or " + s + " including " + p + " prefix keys)");
            }
            pad = keyPadding.castTo(DataType.DOUBLE).toDoubleMatrix();
        }
        if (causal && p + causalOffset + t < s) {
            // the last query must be able to see the last key (keys beyond the queries make no sense)
            throw new IllegalArgumentException("causal mask with offset " + causalOffset + ": " + t
                    + " queries cannot reach " + (s - p) + " non-prefix keys");
        }
        long rows = pad == null ? 1 : batch;
        // without the causal rule every query row is the same: one row, broadcast over T
        long qRows = causal ? t : 1;
        long n = rows * qRows * s;
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("attention mask too large: " + rows + "x" + qRows + "x" + s);
        }
        double[] keep = new double[(int) n];
        boolean emptyRow = false;
        int idx = 0;
        for (int b = 0; b < rows; b++) {
            for (long q = 0; q < qRows; q++) {
                boolean any = false;
                for (long k = 0; k < s; k++) {
                    boolean visible = true;
                    if (causal && k >= p && k - p > causalOffset + q) {
                        visible = false;
                    }
                    if (visible && pad != null && k >= padOffset && pad[b][(int) (k - padOffset)] == 0.0) {
                        visible = false;
                    }
                    keep[idx++] = visible ? 1.0 : 0.0;
                    any |= visible;
                }
                emptyRow |= !any;
            }
        }
        INDArray keepArr = Nd4j.create(keep, new long[]{rows, 1, qRows, s}, DataType.DOUBLE);
        if (dtype != DataType.DOUBLE) {
            keepArr = keepArr.castTo(dtype);
        }
        INDArray fill = keepArr.rsub(1.0).muli(MASKED_SCORE);
        boolean allVisible = true;
        for (double k : keep) {
            allVisible &= k != 0.0;
        }
        float[] keepRows = new float[keep.length];
        for (int i = 0; i < keep.length; i++) {
            keepRows[i] = (float) keep[i];
        }
        return new Built(keepArr, fill, emptyRow, allVisible, keepRows, (int) rows, (int) qRows);
    }

    /**
     * A mask materialised for one shape: {@code keep} and {@code fill} as ND4J arrays
     * {@code [maskRows, 1, qRows, S]} (for the generic path) and the same 0/1 rows as a
     * {@code float[maskRows·qRows·S]} for the fused FLOAT kernels, where score row
     * {@code ((b·H + h)·T + t)} reads mask row {@link #maskRow}.
     */
    record Built(INDArray keep, INDArray fill, boolean hasEmptyRows, boolean allVisible, float[] keepRows,
                 int maskBatchRows, int maskQueryRows) {
        /** {@code scores [B, H, T, S]} in place: masked entries become {@link #MASKED_SCORE}. */
        void apply(INDArray scores) {
            scores.muli(keep).addi(fill);
        }

        /** The mask row of score row {@code r} of scores {@code [B, H, T, S]} (rows counted over B·H·T). */
        int maskRow(int r, int heads, int t) {
            int b = maskBatchRows > 1 ? r / (heads * t) : 0;
            int q = maskQueryRows > 1 ? r % t : 0;
            return b * maskQueryRows + q;
        }
    }

    @Override
    public String toString() {
        return "AttentionMask{" + (causal ? "causal offset=" + causalOffset : "bidirectional")
                + (keyPadding != null ? ", padding " + Arrays.toString(keyPadding.shape()) : "")
                + (prefixLength > 0 ? ", prefix " + prefixLength : "") + "}";
    }
}
