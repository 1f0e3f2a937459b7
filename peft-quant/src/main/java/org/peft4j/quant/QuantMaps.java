package org.peft4j.quant;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The code tables of bitsandbytes' quantizers, as float32 values.
 *
 * <ul>
 *   <li>{@link #nf4()}: bitsandbytes' NF4 table ({@code get_4bit_type("nf4")}), ascending;</li>
 *   <li>{@link #fp4()}: {@code [0, 0.0625, 8, 12, 4, 6, 2, 3, -0, -0.0625, -8, -12, -4, -6, -2, -3] / 12}
 *       ({@code get_4bit_type("fp4")}; index bit 3 is the sign);</li>
 *   <li>{@link #dynamicSigned()}: {@code create_dynamic_map(signed=True)}, the 256-value map of the
 *       nested (double-quantization) statistics, computed the way torch computes it on an AVX2
 *       CPU (see {@link #torchLinspace});</li>
 *   <li>{@link #dynamicSignedCpu()}: the same map with entry 0 set to -1.0, which bitsandbytes' CPU
 *       kernel ({@code quantize_cpu}) writes before searching it, so that the minimum normalized
 *       value -1 has an exact code. Double quantization uses and stores this map.</li>
 * </ul>
 * Every call returns a fresh copy.
 */
public final class QuantMaps {
    private static final float[] NF4 = {
            -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
            -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
            0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
            0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

    private static final float[] FP4 = fp4Table();
    private static final float[] DYNAMIC = dynamicMap();
    private static final float[] DYNAMIC_CPU = dynamicCpu();

    private QuantMaps() {
    }

    public static float[] nf4() {
        return NF4.clone();
    }

    public static float[] fp4() {
        return FP4.clone();
    }

    /** The 16-value table of a 4-bit type. */
    public static float[] fourBit(QuantType type) {
        return switch (type) {
            case NF4 -> nf4();
            case FP4 -> fp4();
            default -> throw new IllegalArgumentException(type + " is not a 4-bit type");
        };
    }

    public static float[] dynamicSigned() {
        return DYNAMIC.clone();
    }

    public static float[] dynamicSignedCpu() {
        return DYNAMIC_CPU.clone();
    }

    private static float[] fp4Table() {
        float[] raw = {0f, 0.0625f, 8f, 12f, 4f, 6f, 2f, 3f, -0.0f, -0.0625f, -8f, -12f, -4f, -6f, -2f, -3f};
        float max = 12f;
        float[] out = new float[16];
        for (int i = 0; i < 16; i++) {
            out[i] = raw[i] / max;
        }
        return out;
    }

    /**
     * {@code torch.linspace(start, end, steps)} in float32 as torch's AVX2 CPU kernel computes it:
     * {@code step = (end - start) / (steps - 1)}; element i is {@code fma(step, i, start)} below
     * the half-way index and {@code fma(-step, steps - i - 1, end)} from there on; elements are
     * produced in pairs of 8-lane vectors (16 at a time), each vector from its first element's
     * value {@code base} as {@code base + j·step} (lane j, two roundings), and the tail that does
     * not fill 16 elements element by element. (Checked bit for bit against torch 1.13 by
     * {@code scripts/reference/quant_reference.py}.)
     */
    static float[] torchLinspace(float start, float end, int steps) {
        if (steps == 1) {
            return new float[]{start};
        }
        float step = (end - start) / (float) (steps - 1);
        int half = steps / 2;
        float[] out = new float[steps];
        int vec = 8;
        int i = 0;
        for (; i <= steps - 2 * vec; i += 2 * vec) {
            for (int v = 0; v < 2; v++) {
                int idx = i + v * vec;
                float base = linspaceScalar(start, end, step, steps, half, idx);
                for (int j = 0; j < vec; j++) {
                    out[idx + j] = base + (float) j * step;
                }
            }
        }
        for (int k = i; k < steps; k++) {
            out[k] = linspaceScalar(start, end, step, steps, half, k);
        }
        return out;
    }

    private static float linspaceScalar(float start, float end, float step, int steps, int half, int i) {
        return i < half ? Math.fma(step, (float) i, start) : Math.fma(-step, (float) (steps - i - 1), end);
    }

    /** bitsandbytes' {@code create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)}. */
    private static float[] dynamicMap() {
        int maxExponentBits = 7;
        int nonSignBits = 7;
        List<Float> data = new ArrayList<>();
        for (int i = 0; i < maxExponentBits; i++) {
            int items = (1 << (i + nonSignBits - maxExponentBits)) + 1;
            float[] b = torchLinspace(0.1f, 1.0f, items);
            float scale = (float) Math.pow(10.0, -(maxExponentBits - 1) + i);
            float[] scaled = new float[items - 1];
            for (int k = 0; k < items - 1; k++) {
                float mean = (b[k] + b[k + 1]) / 2.0f;
                scaled[k] = scale * mean;
            }
            for (float v : scaled) {
                data.add(v);
            }
            for (float v : scaled) {
                data.add(-v);
            }
        }
        data.add(0.0f);
        data.add(1.0f);
        if (data.size() != 256) {
            throw new IllegalStateException("dynamic map has " + data.size() + " values, expected 256");
        }
        Collections.sort(data);
        float[] out = new float[256];
        for (int k = 0; k < 256; k++) {
            out[k] = data.get(k);
        }
        return out;
    }

    private static float[] dynamicCpu() {
        float[] m = DYNAMIC.clone();
        m[0] = -1.0f;
        return m;
    }
}
