package org.peft4j.quant;

import org.peft4j.core.tensor.Rng;

/**
 * Reconstruction-error helpers shared by {@link QuantizationPropertiesTest} (which asserts NF4 &lt;
 * FP4 &lt; uniform) and {@code bench.QuantStatsReport} (which prints the figures per block size).
 */
public final class QuantStats {
    private QuantStats() {
    }

    /** {@code n} values drawn from N(0, std²) with a fixed seed. */
    public static float[] gaussian(long seed, int n, double std) {
        Rng rng = new Rng(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (rng.nextGaussian() * std);
        }
        return v;
    }

    public static double rmse(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            double d = (double) a[i] - b[i];
            s += d * d;
        }
        return Math.sqrt(s / a.length);
    }

    /** Symmetric 4-bit integer quantization with the same per-block absmax: levels k·absmax/7, k = -7..7. */
    public static float[] uniform4bit(float[] x, int block) {
        float[] out = new float[x.length];
        for (int b0 = 0; b0 < x.length; b0 += block) {
            int end = Math.min(x.length, b0 + block);
            float m = 0;
            for (int i = b0; i < end; i++) {
                m = Math.max(m, Math.abs(x[i]));
            }
            for (int i = b0; i < end; i++) {
                int q = m == 0 ? 0 : (int) Math.rint(x[i] / m * 7);
                out[i] = q * m / 7;
            }
        }
        return out;
    }
}
