package org.peft4j.core.io;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;

/**
 * Byte-level access to ND4J's off-heap memory and the 16-bit float conversions, shared by the
 * safetensors reader and writer. Package-private: the public API speaks INDArrays.
 */
final class NativeBuffers {
    /** Elements converted per bulk step when widening F16/BF16 (scratch arrays on the heap). */
    private static final int WIDEN_BLOCK = 8192;

    private NativeBuffers() {
    }

    /**
     * A ByteBuffer over {@code len} bytes of {@code arr}'s memory starting {@code offset} bytes
     * after the array's first element (native byte order, position 0). {@code arr} must be
     * contiguous (see {@link #isContiguousRowMajor}) and must stay reachable while the buffer is used.
     */
    static ByteBuffer bytes(INDArray arr, long offset, int len) {
        Pointer base = arr.data().addressPointer();
        BytePointer p = new BytePointer(base).getPointer(offset);
        p.capacity(len);
        return p.asByteBuffer().order(ByteOrder.nativeOrder());
    }

    /**
     * True when the array's elements lie in memory in row-major order without holes, from
     * {@code data().addressPointer()} on. Views such as a row range are; transposes, permutations
     * and column slices are not (ND4J reports some of those as non-views, so the strides decide).
     */
    static boolean isContiguousRowMajor(INDArray arr) {
        if (arr.length() <= 1) {
            return true;
        }
        return arr.ordering() == 'c' && Shape.hasDefaultStridesForShape(arr) && arr.elementWiseStride() == 1;
    }

    /** IEEE binary16 bits → float, exactly (every half value is representable as a float). */
    static float halfToFloat(int h) {
        int sign = (h & 0x8000) << 16;
        int exp = (h >>> 10) & 0x1f;
        int mant = h & 0x3ff;
        if (exp == 0x1f) {
            // Inf or NaN: keep the payload in the top mantissa bits, as numpy and PyTorch do.
            return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        }
        if (exp == 0) {
            // Zero or subnormal: mant × 2^-24, exact in float.
            float v = mant * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        // Normal: rebias the exponent from 15 to 127.
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }

    /** bfloat16 bits → float: bfloat16 is the top half of a float32. */
    static float bf16ToFloat(int b) {
        return Float.intBitsToFloat((b & 0xffff) << 16);
    }

    private static final class HalfTable {
        /** All 65,536 half values, 256 KB, built on first use. */
        static final float[] TABLE = new float[1 << 16];

        static {
            for (int i = 0; i < TABLE.length; i++) {
                TABLE[i] = halfToFloat(i);
            }
        }
    }

    /**
     * Converts {@code src} (little-endian 16-bit floats, F16 or BF16) into {@code dst} (floats in
     * native order), element for element; both buffers are read/written from their position.
     */
    static void widen(ByteBuffer src, ByteBuffer dst, boolean bf16) {
        ShortBuffer s = src.order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
        FloatBuffer d = dst.order(ByteOrder.nativeOrder()).asFloatBuffer();
        int n = s.remaining();
        if (d.remaining() < n) {
            throw new IllegalStateException("destination holds " + d.remaining() + " floats, need " + n);
        }
        short[] in = new short[Math.min(WIDEN_BLOCK, n)];
        float[] out = new float[in.length];
        float[] table = bf16 ? null : HalfTable.TABLE;
        for (int done = 0; done < n; ) {
            int k = Math.min(in.length, n - done);
            s.get(in, 0, k);
            if (bf16) {
                for (int i = 0; i < k; i++) {
                    out[i] = Float.intBitsToFloat((in[i] & 0xffff) << 16);
                }
            } else {
                for (int i = 0; i < k; i++) {
                    out[i] = table[in[i] & 0xffff];
                }
            }
            d.put(out, 0, k);
            done += k;
        }
    }
}
