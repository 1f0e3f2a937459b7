package org.peft4j.core.model.decoder;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;

/**
 * Validation of the decoders' id inputs. The position ids that go with a padding mask are
 * {@link org.peft4j.core.model.BackboneInputs#positions()}: as Hugging Face {@code generate()},
 * a token's position is the number of real (mask = 1) tokens before it, plus any prefix.
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
}
