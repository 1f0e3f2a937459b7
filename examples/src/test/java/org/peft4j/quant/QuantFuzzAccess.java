package org.peft4j.quant;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/** Lets the fuzz targets (examples tests) reach the package-private quantized-state reader. */
public final class QuantFuzzAccess {
    private QuantFuzzAccess() {
    }

    /** {@link Bnb4bitStateDict#fromStateDict}, then one dequantization of the result. */
    public static long rebuild(Map<String, INDArray> tensors, String where) {
        Quantized4bit q = Bnb4bitStateDict.fromStateDict(tensors, where);
        int n = (int) Math.min(q.numel(), 4096);
        float[] out = new float[n];
        q.dequantize(0, n, out, 0);
        return q.numel();
    }
}
