package org.peft4j.quant;

import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * The 4-bit block quantizer: a float weight to a {@link Quantized4bit} exactly as bitsandbytes'
 * {@code quantize_4bit} does it (its reference/CPU kernel), optionally with double quantization
 * of the block scales.
 *
 * <p>Quantization of the flattened values {@code x}:
 * <ol>
 *   <li>blocks of {@code blockSize} values (a power of two in [32, 4096]; the last block may be partial);</li>
 *   <li>{@code absmax[b] = max|x|} over the block, in float32;</li>
 *   <li>{@code s = clamp(x · (1 / absmax[b]), -1, 1)} (a float32 reciprocal, then a float32 product);</li>
 *   <li>the code is the index of the nearest table value, {@code argmin_k |s − code[k]|} in float32,
 *       the first index on ties; a NaN (a block whose absmax is 0) gives index 0;</li>
 *   <li>two codes per byte, the first value in the high nibble; an odd count is padded with the
 *       code of 0.0.</li>
 * </ol>
 * Double quantization ({@code compress_statistics}) then stores the block scales in 8 bits:
 * {@code offset = mean(absmax)} (float32, from a double sum), {@code v = absmax − offset}, blocks of
 * 256 values of {@code v} quantized with the signed dynamic map ({@link QuantMaps#dynamicSignedCpu()})
 * as bitsandbytes' CPU kernel {@code quantize_block} does (its own absmax per 256 block, a float32
 * division, the nearest map value with ties to the lower index). A block's scale is then
 * {@code map8[q[b]] · absmax2[b / 256] + offset}.
 */
final class FourBitQuantizer {
    private FourBitQuantizer() {
    }

    /**
     * Quantizes {@code values} (the flattened weight of shape {@code shape}) to {@code type}
     * (NF4 or FP4) in blocks of {@code blockSize}, with double quantization of the scales if asked.
     */
    static Quantized4bit quantize(float[] values, long[] shape, QuantType type, int blockSize, boolean doubleQuant) {
        if (type == null || !type.isFourBit()) {
            throw new IllegalArgumentException("4-bit quantization needs NF4 or FP4, got " + type);
        }
        Quantized4bit.checkBlockSize(blockSize);
        long n = Quantized4bit.numel(shape);
        if (n != values.length || n == 0) {
            throw new IllegalArgumentException("cannot quantize " + values.length + " values as shape " + Arrays.toString(shape));
        }
        int nBlocks = (int) ((n + blockSize - 1) / blockSize);
        float[] absmax = new float[nBlocks];
        byte[] packed = new byte[(int) ((n + 1) / 2)];
        Nearest4 nearest = new Nearest4(QuantMaps.fourBit(type));
        int blocksPerChunk = Math.max(1, Quantized4bit.CHUNK / blockSize);
        int chunks = (nBlocks + blocksPerChunk - 1) / blocksPerChunk;
        IntStream range = IntStream.range(0, chunks);
        if (n >= 4L * Quantized4bit.CHUNK) {
            range = range.parallel();
        }
        // blocks are independent and every block starts at an even index (block sizes are even),
        // so parallel chunks never share a byte
        range.forEach(c -> {
            int b0 = c * blocksPerChunk;
            int b1 = Math.min(nBlocks, b0 + blocksPerChunk);
            for (int b = b0; b < b1; b++) {
                int start = b * blockSize;
                int end = (int) Math.min(n, (long) start + blockSize);
                float m = 0f;
                for (int i = start; i < end; i++) {
                    m = Math.max(m, Math.abs(values[i]));
                }
                absmax[b] = m;
                float inv = 1.0f / m;
                for (int i = start; i < end; i += 2) {
                    int hi = nearest.index(clamp(values[i] * inv));
                    // the padding value of an odd count is 0.0 (not scaled)
                    int lo = i + 1 < end ? nearest.index(clamp(values[i + 1] * inv)) : nearest.index(0.0f);
                    packed[i >> 1] = (byte) ((hi << 4) | lo);
                }
            }
        });
        float[] map = QuantMaps.fourBit(type);
        if (!doubleQuant) {
            return Quantized4bit.plain(type, blockSize, shape, packed, map, absmax);
        }
        Nested nested = quantizeNested(absmax);
        return Quantized4bit.nested(type, blockSize, shape, packed, map, nested.codes, nested.absmax2,
                QuantMaps.dynamicSignedCpu(), nested.offset);
    }

    private static float clamp(float s) {
        // NaN stays NaN (Math.max/min propagate it): the caller maps it to code 0 like torch.argmin
        return Math.min(1.0f, Math.max(-1.0f, s));
    }

    /** The 8-bit nested statistics of a double-quantized weight. */
    record Nested(byte[] codes, float[] absmax2, float offset) {
    }

    /** Double quantization of the block scales (see the class comment). */
    static Nested quantizeNested(float[] absmax) {
        double sum = 0;
        for (float a : absmax) {
            sum += a;
        }
        float offset = (float) (sum / absmax.length);
        float[] centered = new float[absmax.length];
        for (int i = 0; i < absmax.length; i++) {
            centered[i] = absmax[i] - offset;
        }
        Blockwise8 q = Blockwise8.quantize(centered, Quantized4bit.NESTED_BLOCK, QuantMaps.dynamicSignedCpu());
        return new Nested(q.codes(), q.absmax(), offset);
    }

    /**
     * The nearest-code search of the reference kernel ({@code argmin |s − code[k]|}, first index on
     * ties, NaN → 0) done by binary search over the values sorted ascending: only the two
     * neighbours of {@code s} can be nearest, their float32 distances are compared exactly as the
     * full argmin compares them, and a tie goes to the smaller table index.
     */
    static final class Nearest4 {
        private final float[] sorted;
        private final int[] index;

        Nearest4(float[] table) {
            Integer[] order = new Integer[table.length];
            for (int i = 0; i < order.length; i++) {
                order[i] = i;
            }
            // ascending by value; equal values (0 and -0 of FP4) by index, so the first index wins
            Arrays.sort(order, (a, b) -> {
                int c = Float.compare(table[a] == 0f ? 0f : table[a], table[b] == 0f ? 0f : table[b]);
                return c != 0 ? c : Integer.compare(a, b);
            });
            // drop the later duplicates of a value: argmin never returns them
            int m = 0;
            float[] s = new float[table.length];
            int[] idx = new int[table.length];
            for (int o : order) {
                float v = table[o] == 0f ? 0f : table[o];
                if (m > 0 && s[m - 1] == v) {
                    continue;
                }
                s[m] = v;
                idx[m] = o;
                m++;
            }
            sorted = Arrays.copyOf(s, m);
            index = Arrays.copyOf(idx, m);
        }

        int index(float v) {
            if (v != v) {
                return 0;
            }
            int lo = 0;
            int hi = sorted.length - 1;
            if (v <= sorted[0]) {
                return index[0];
            }
            if (v >= sorted[hi]) {
                return index[hi];
            }
            // sorted[lo] <= v < sorted[hi]
            while (hi - lo > 1) {
                int mid = (lo + hi) >>> 1;
                if (sorted[mid] <= v) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            float dl = Math.abs(v - sorted[lo]);
            float dr = Math.abs(v - sorted[hi]);
            if (dr < dl) {
                return index[hi];
            }
            if (dl < dr) {
                return index[lo];
            }
            return Math.min(index[lo], index[hi]);
        }
    }
}
