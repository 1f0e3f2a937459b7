package org.peft4j.core.model.decoder;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;

/**
 * Validation of decoder inputs and the position ids that go with a padding mask.
 *
 * <p>Positions follow Hugging Face {@code generate()}: a token's position is the number of real
 * (mask = 1) tokens before it. For unpadded or right-padded input this is {@code arange(T)}
 * (HF forward's default); for left-padded input each row starts at 0 at its first real token.
 * Pad positions get 0 (their outputs are never meaningful).
 */
public final class DecoderInputs {
    private DecoderInputs() {
    }

    /**
     * Checks ids {@code [B, T]} (integers in {@code [0, vocab)}), the mask {@code [B, past + T]}
     * (0/1, may be null), and that {@code past + T} does not exceed {@code maxPositions}.
     *
     * @return the mask as INT64 (all ones when null was given)
     */
    public static INDArray check(INDArray ids, INDArray mask, int past, int vocab, int maxPositions, String limitName) {
        if (ids == null || ids.rank() != 2 || ids.size(0) == 0 || ids.size(1) == 0) {
            throw new IllegalArgumentException("input ids must be a non-empty [batch, seq] array, found "
                    + (ids == null ? "null" : Arrays.toString(ids.shape())));
        }
        if (ids.dataType().isFPType()) {
            throw new IllegalArgumentException("input ids must be integers, found " + ids.dataType());
        }
        long b = ids.size(0);
        long t = ids.size(1);
        long total = past + t;
        if (total > maxPositions) {
            throw new IllegalArgumentException("sequence length " + total + (past > 0 ? " (" + past + " cached + " + t + " new)" : "")
                    + " exceeds the model's limit of " + maxPositions + " positions (" + limitName + ")");
        }
        long min = ids.minNumber().longValue();
        long max = ids.maxNumber().longValue();
        if (min < 0 || max >= vocab) {
            throw new IllegalArgumentException("token ids must be in [0, " + vocab + "), found range [" + min + ", " + max + "]");
        }
        if (mask == null) {
            return Nd4j.ones(DataType.INT64, b, total);
        }
        if (mask.rank() != 2 || mask.size(0) != b || mask.size(1) != total) {
            throw new IllegalArgumentException("attention mask must be [" + b + ", " + total + "] (cached + new positions), found "
                    + Arrays.toString(mask.shape()));
        }
        INDArray m = mask.dataType() == DataType.INT64 ? mask : mask.castTo(DataType.INT64);
        long mn = m.minNumber().longValue();
        long mx = m.maxNumber().longValue();
        if (mn < 0 || mx > 1) {
            throw new IllegalArgumentException("attention mask must hold only 0 and 1, found range [" + mn + ", " + mx + "]");
        }
        return m;
    }

    /** Position ids {@code [B, T]} of the last {@code T} columns of {@code mask [B, past + T]}. */
    public static long[][] positions(INDArray mask, int past, int t) {
        int b = (int) mask.size(0);
        long[][] pos = new long[b][t];
        for (int i = 0; i < b; i++) {
            long count = 0;
            for (int j = 0; j < past + t; j++) {
                long m = mask.getLong(i, j);
                count += m;
                if (j >= past) {
                    pos[i][j - past] = m == 1 ? count - 1 : Math.max(0, count - 1);
                }
            }
        }
        return pos;
    }

    public static INDArray toArray(long[][] pos) {
        return Nd4j.createFromArray(pos);
    }

    /** The largest value in {@code pos}. */
    public static long max(long[][] pos) {
        long m = 0;
        for (long[] r : pos) {
            for (long v : r) {
                m = Math.max(m, v);
            }
        }
        return m;
    }
}
