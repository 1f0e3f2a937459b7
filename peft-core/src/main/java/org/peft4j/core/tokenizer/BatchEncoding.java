package org.peft4j.core.tokenizer;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;

/**
 * A padded batch: {@code [batch, seq]} matrices of ids, attention mask and token type ids.
 * Padding positions carry the tokenizer's pad id, mask 0 and type id 0.
 */
public final class BatchEncoding {
    private final int[][] ids;
    private final int[][] attentionMask;
    private final int[][] typeIds;

    public BatchEncoding(int[][] ids, int[][] attentionMask, int[][] typeIds) {
        if (ids.length != attentionMask.length || ids.length != typeIds.length) {
            throw new IllegalArgumentException("batch arrays differ in batch size: ids " + ids.length
                    + ", attentionMask " + attentionMask.length + ", typeIds " + typeIds.length);
        }
        int t = ids.length == 0 ? 0 : ids[0].length;
        for (int b = 0; b < ids.length; b++) {
            if (ids[b].length != t || attentionMask[b].length != t || typeIds[b].length != t) {
                throw new IllegalArgumentException("row " + b + " of the batch is not padded to length " + t);
            }
        }
        this.ids = ids;
        this.attentionMask = attentionMask;
        this.typeIds = typeIds;
    }

    /** Pads {@code encodings} on the right to {@code length} (each must be no longer). */
    public static BatchEncoding pad(List<Encoding> encodings, int length, int padId) {
        int n = encodings.size();
        int[][] ids = new int[n][length];
        int[][] mask = new int[n][length];
        int[][] types = new int[n][length];
        for (int b = 0; b < n; b++) {
            Encoding e = encodings.get(b);
            if (e.length() > length) {
                throw new IllegalArgumentException("encoding " + b + " has " + e.length()
                        + " tokens, longer than the padded length " + length);
            }
            System.arraycopy(e.ids(), 0, ids[b], 0, e.length());
            System.arraycopy(e.attentionMask(), 0, mask[b], 0, e.length());
            System.arraycopy(e.typeIds(), 0, types[b], 0, e.length());
            for (int i = e.length(); i < length; i++) {
                ids[b][i] = padId;
            }
        }
        return new BatchEncoding(ids, mask, types);
    }

    public int batchSize() {
        return ids.length;
    }

    /** Padded sequence length (columns). */
    public int length() {
        return ids.length == 0 ? 0 : ids[0].length;
    }

    /** Raw rows (live arrays, not copies). */
    public int[][] ids() {
        return ids;
    }

    public int[][] attentionMask() {
        return attentionMask;
    }

    public int[][] typeIds() {
        return typeIds;
    }

    /** Number of real (unpadded) tokens of row {@code b}. */
    public int realLength(int b) {
        int n = 0;
        for (int m : attentionMask[b]) {
            n += m;
        }
        return n;
    }

    /** Token ids as an {@code INT64 [batch, seq]} array. */
    public INDArray inputIdsArray() {
        return toArray(ids);
    }

    /** Attention mask as an {@code INT64 [batch, seq]} array (1 real, 0 padding). */
    public INDArray attentionMaskArray() {
        return toArray(attentionMask);
    }

    /** Token type ids as an {@code INT64 [batch, seq]} array. */
    public INDArray typeIdsArray() {
        return toArray(typeIds);
    }

    private static INDArray toArray(int[][] rows) {
        int n = rows.length;
        int t = n == 0 ? 0 : rows[0].length;
        long[] flat = new long[n * t];
        for (int b = 0; b < n; b++) {
            for (int i = 0; i < t; i++) {
                flat[b * t + i] = rows[b][i];
            }
        }
        return Nd4j.createFromArray(flat).reshape(n, t).castTo(DataType.INT64);
    }
}
