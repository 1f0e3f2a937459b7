package org.peft4j.core.train;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;

/**
 * Pads tokenized examples to one rectangle: to the longest sequence in the batch, or to a
 * fixed length. Builds the attention mask (1 = token, 0 = padding), pads segment ids with 0
 * and token labels with -100, and stacks class labels into {@code [B]}.
 *
 * <p>Output: {@code inputIds [B, T]} INT64, {@code attentionMask [B, T]} FLOAT,
 * {@code tokenTypeIds [B, T]} INT64 (only when the examples carry them), labels {@code [B]}
 * for {@link Example}s or {@code [B, T]} for {@link TokenExample}s, INT64. A batch must not
 * mix the two kinds.
 */
public final class PaddingCollator<T extends TokenizedExample> implements Collator<T> {

    /** Where padding goes: RIGHT for encoders and training, LEFT for batched decoder generation. */
    public enum Side { RIGHT, LEFT }

    private final int padId;
    /** 0 = no limit. */
    private final int maxLength;
    /** Pad every batch to exactly maxLength instead of to its longest sequence. */
    private final boolean padToMax;
    private final boolean truncate;
    private final Side side;

    private PaddingCollator(int padId, int maxLength, boolean padToMax, boolean truncate, Side side) {
        if (maxLength < 0) {
            throw new IllegalArgumentException("maxLength must be >= 0 (0 = pad to the longest in the batch): " + maxLength);
        }
        if (truncate && maxLength == 0) {
            throw new IllegalArgumentException("truncation needs a maxLength > 0");
        }
        if (side == null) {
            throw new IllegalArgumentException("padding side must not be null");
        }
        this.padId = padId;
        this.maxLength = maxLength;
        this.padToMax = padToMax;
        this.truncate = truncate;
        this.side = side;
    }

    /** Pads on the right with {@code padId} to the longest sequence of each batch. */
    public static <T extends TokenizedExample> PaddingCollator<T> dynamic(int padId) {
        return new PaddingCollator<>(padId, 0, false, false, Side.RIGHT);
    }

    /**
     * Pads on the right with {@code padId} to exactly {@code maxLength}. Longer sequences are
     * cut to {@code maxLength} when {@code truncate}, otherwise they are an error.
     */
    public static <T extends TokenizedExample> PaddingCollator<T> fixed(int padId, int maxLength, boolean truncate) {
        if (maxLength <= 0) {
            throw new IllegalArgumentException("fixed padding needs maxLength > 0: " + maxLength);
        }
        return new PaddingCollator<>(padId, maxLength, true, truncate, Side.RIGHT);
    }

    /** The same collator padding on the given side. */
    public PaddingCollator<T> withSide(Side side) {
        return new PaddingCollator<>(padId, maxLength, padToMax, truncate, side);
    }

    /**
     * Pads to the longest sequence of the batch, but cuts (when {@code truncate}) or rejects
     * sequences longer than {@code maxLength}.
     */
    public static <T extends TokenizedExample> PaddingCollator<T> dynamic(int padId, int maxLength, boolean truncate) {
        if (maxLength <= 0) {
            throw new IllegalArgumentException("a length cap needs maxLength > 0: " + maxLength);
        }
        return new PaddingCollator<>(padId, maxLength, false, truncate, Side.RIGHT);
    }

    @Override
    public Batch collate(List<T> examples) {
        if (examples == null || examples.isEmpty()) {
            throw new IllegalArgumentException("cannot collate an empty list of examples");
        }
        int b = examples.size();
        boolean classification = examples.get(0) instanceof Example;
        boolean hasTypes = examples.get(0).typeIds() != null;
        int longest = 0;
        for (int i = 0; i < b; i++) {
            T ex = examples.get(i);
            if (ex == null) {
                throw new IllegalArgumentException("example " + i + " of the batch is null");
            }
            if ((ex instanceof Example) != classification) {
                throw new IllegalArgumentException("example " + i + " is a " + ex.getClass().getSimpleName()
                        + " but example 0 is a " + examples.get(0).getClass().getSimpleName() + "; a batch must not mix them");
            }
            if ((ex.typeIds() != null) != hasTypes) {
                throw new IllegalArgumentException("example " + i + (hasTypes ? " lacks" : " has")
                        + " typeIds but example 0 " + (hasTypes ? "has" : "does not"));
            }
            int len = ex.ids().length;
            if (maxLength > 0 && len > maxLength && !truncate) {
                throw new IllegalArgumentException("example " + i + " has " + len + " tokens, more than maxLength "
                        + maxLength + " (enable truncation or raise maxLength)");
            }
            longest = Math.max(longest, len);
        }
        int t = padToMax ? maxLength : (maxLength > 0 ? Math.min(longest, maxLength) : longest);

        long[][] ids = new long[b][t];
        float[][] mask = new float[b][t];
        long[][] types = hasTypes ? new long[b][t] : null;
        long[][] tokLabels = classification ? null : new long[b][t];
        long[] clsLabels = classification ? new long[b] : null;
        for (int i = 0; i < b; i++) {
            T ex = examples.get(i);
            int len = Math.min(ex.ids().length, t);
            int offset = side == Side.RIGHT ? 0 : t - len;
            java.util.Arrays.fill(ids[i], padId);
            if (tokLabels != null) {
                java.util.Arrays.fill(tokLabels[i], Batch.IGNORE_INDEX);
            }
            for (int j = 0; j < len; j++) {
                ids[i][offset + j] = ex.ids()[j];
                mask[i][offset + j] = 1f;
                if (types != null) {
                    types[i][offset + j] = ex.typeIds()[j];
                }
                if (tokLabels != null) {
                    tokLabels[i][offset + j] = ((TokenExample) ex).labels()[j];
                }
            }
            if (clsLabels != null) {
                clsLabels[i] = ((Example) ex).label();
            }
        }
        INDArray labels = classification ? Nd4j.createFromArray(clsLabels) : Nd4j.createFromArray(tokLabels);
        return new Batch(Nd4j.createFromArray(ids), Nd4j.createFromArray(mask),
                types == null ? null : Nd4j.createFromArray(types), labels);
    }
}
