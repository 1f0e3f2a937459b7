package org.peft4j.quant.bench;

import org.peft4j.quant.QuantStats;
import org.peft4j.quant.QuantType;
import org.peft4j.quant.Quantized4bit;

import java.util.Locale;

/**
 * Prints the reconstruction RMSE of NF4, FP4 and plain 4-bit uniform absmax quantization on
 * N(0, 0.02²) weights {@code [1024, 1024]}, and the storage of a {@code [4096, 4096]} NF4 weight
 * with and without double quantization, from the actual buffers.
 * <pre>java -cp $CP org.peft4j.quant.bench.QuantStatsReport</pre>
 */
public final class QuantStatsReport {
    private QuantStatsReport() {
    }

    public static void main(String[] args) {
        int n = 1 << 20;
        float[] x = QuantStats.gaussian(2024, n, 0.02);
        long[] shape = {1024, 1024};
        for (int block : new int[]{64, 128, 256}) {
            double nf4 = QuantStats.rmse(x, Quantized4bit.quantize(x, shape, QuantType.NF4, block, false).dequantize());
            double nf4dq = QuantStats.rmse(x, Quantized4bit.quantize(x, shape, QuantType.NF4, block, true).dequantize());
            double fp4 = QuantStats.rmse(x, Quantized4bit.quantize(x, shape, QuantType.FP4, block, false).dequantize());
            double uni = QuantStats.rmse(x, QuantStats.uniform4bit(x, block));
            System.out.printf(Locale.ROOT, "block %4d: RMSE NF4 %.4e (double-quant %.4e), FP4 %.4e, uniform int4 absmax %.4e "
                    + "(std 0.02)%n", block, nf4, nf4dq, fp4, uni);
        }
        // storage depends on the shape only, not on the values
        float[] big = QuantStats.gaussian(2025, 4096 * 4096, 0.02);
        for (boolean dq : new boolean[]{true, false}) {
            Quantized4bit q = Quantized4bit.quantize(big, new long[]{4096, 4096}, QuantType.NF4, 64, dq);
            System.out.printf(Locale.ROOT, "NF4 [4096, 4096] block 64%s: %,d bytes = %.5f bytes/param (%.3f bits)%n",
                    dq ? " double-quant" : "", q.storageBytes(), (double) q.storageBytes() / big.length,
                    8.0 * q.storageBytes() / big.length);
        }
    }
}
