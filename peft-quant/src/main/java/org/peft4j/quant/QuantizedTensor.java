package org.peft4j.quant;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/**
 * A quantized weight matrix {@code [out, in]} (row-major, flattened as PyTorch flattens it): the
 * packed codes and scales only, never the dense values. {@link #dequantize} reconstructs any
 * range of the flattened values into a caller's buffer.
 */
public interface QuantizedTensor {
    QuantType type();

    /** The dense shape, {@code [out, in]}. */
    long[] shape();

    /** Number of dense values. */
    long numel();

    /**
     * Writes dense values {@code [from, from + len)} of the flattened weight into
     * {@code dst[off .. off + len)}.
     */
    void dequantize(long from, int len, float[] dst, int off);

    /** All dense values, flattened. */
    default float[] dequantize() {
        long n = numel();
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("a dense copy of " + n + " values does not fit in a Java array");
        }
        float[] out = new float[(int) n];
        dequantize(0, (int) n, out, 0);
        return out;
    }

    /**
     * The bytes this weight occupies, counted from the actual buffers (codes, scales, nested
     * statistics, code tables, outlier columns), not from a formula.
     */
    long storageBytes();

    /**
     * The tensors to save under {@code prefix} (the module path, e.g.
     * {@code model.layers.0.self_attn.q_proj}), in bitsandbytes' state-dict layout.
     */
    Map<String, INDArray> toStateDict(String prefix);
}
