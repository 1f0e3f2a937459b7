package org.peft4j.quant;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;
import java.util.Map;

/**
 * A weight stored as 4-bit codes: the packed codes (two per byte, the first value in the high
 * nibble), the 16-value code table (NF4 or FP4), and one scale per block of {@code blockSize}
 * values — an fp32 absmax, or with double quantization an 8-bit code per block plus the nested
 * statistics ({@code scale = map8[q[b]] · absmax2[b / 256] + offset}).
 *
 * <p>Dequantization: {@code code[q] · scale} in float32.
 *
 * <p>Made by {@link FourBitQuantizer} (bitsandbytes' {@code quantize_4bit}, see there);
 * saved and loaded as bitsandbytes' {@code Params4bit} tensors by {@link Bnb4bitStateDict}.
 */
public final class Quantized4bit implements QuantizedTensor {
    public static final int MIN_BLOCK = 32;
    public static final int MAX_BLOCK = 4096;
    public static final int NESTED_BLOCK = 256;
    public static final String QUANT_STATE_PREFIX = "quant_state.bitsandbytes__";

    /** Values processed per parallel task when quantizing or dequantizing large weights. */
    static final int CHUNK = 1 << 16;

    // package-private and never changed: Bnb4bitStateDict reads them without copying
    final QuantType type;
    final int blockSize;
    final long[] shape;
    final long n;
    final byte[] packed;
    final float[] quantMap;
    // plain statistics (null with double quantization)
    final float[] absmax;
    // nested statistics (null without double quantization)
    final byte[] absmaxCodes;
    final float[] nestedAbsmax;
    final float[] nestedMap;
    final float offset;
    /** Per block scale, rebuilt from the nested statistics once (4 bytes per block, not counted as storage). */
    private transient float[] scaleCache;

    private Quantized4bit(QuantType type, int blockSize, long[] shape, byte[] packed, float[] quantMap, float[] absmax,
                          byte[] absmaxCodes, float[] nestedAbsmax, float[] nestedMap, float offset) {
        this.type = type;
        this.blockSize = blockSize;
        this.shape = shape.clone();
        this.n = numel(shape);
        this.packed = packed;
        this.quantMap = quantMap;
        this.absmax = absmax;
        this.absmaxCodes = absmaxCodes;
        this.nestedAbsmax = nestedAbsmax;
        this.nestedMap = nestedMap;
        this.offset = offset;
    }

    /** A weight whose block scales are fp32 absmax values. */
    static Quantized4bit plain(QuantType type, int blockSize, long[] shape, byte[] packed, float[] quantMap, float[] absmax) {
        return new Quantized4bit(type, blockSize, shape, packed, quantMap, absmax, null, null, null, 0f);
    }

    /** A double-quantized weight: 8-bit scale codes with their nested absmax, 256-value map and offset. */
    static Quantized4bit nested(QuantType type, int blockSize, long[] shape, byte[] packed, float[] quantMap,
                                byte[] absmaxCodes, float[] nestedAbsmax, float[] nestedMap, float offset) {
        return new Quantized4bit(type, blockSize, shape, packed, quantMap, null, absmaxCodes, nestedAbsmax, nestedMap, offset);
    }

    static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** @throws IllegalArgumentException unless {@code blockSize} is a power of two in [32, 4096] */
    public static void checkBlockSize(int blockSize) {
        if (blockSize < MIN_BLOCK || blockSize > MAX_BLOCK || Integer.bitCount(blockSize) != 1) {
            throw new IllegalArgumentException("block size " + blockSize + " is not supported: it must be a power of two from "
                    + MIN_BLOCK + " to " + MAX_BLOCK + " (32, 64, 128, ..., 4096)");
        }
    }

    /**
     * Quantizes {@code values} (the flattened weight of shape {@code shape}) to {@code type}
     * (NF4 or FP4) in blocks of {@code blockSize}, with double quantization of the scales if asked
     * ({@link FourBitQuantizer}).
     */
    public static Quantized4bit quantize(float[] values, long[] shape, QuantType type, int blockSize, boolean doubleQuant) {
        return FourBitQuantizer.quantize(values, shape, type, blockSize, doubleQuant);
    }

    // ---- accessors ---------------------------------------------------------------------------

    @Override
    public QuantType type() {
        return type;
    }

    public int blockSize() {
        return blockSize;
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    @Override
    public long numel() {
        return n;
    }

    public boolean isDoubleQuant() {
        return absmaxCodes != null;
    }

    public int numBlocks() {
        return (int) ((n + blockSize - 1) / blockSize);
    }

    /** The packed codes (a copy): byte i holds value 2i in its high nibble and 2i+1 in its low one. */
    public byte[] packedCodes() {
        return packed.clone();
    }

    /** The code of value {@code i}, 0..15. */
    public int code(long i) {
        int b = packed[(int) (i >> 1)] & 0xff;
        return (i & 1) == 0 ? b >>> 4 : b & 0x0f;
    }

    /** The fp32 absmax per block (null with double quantization). */
    public float[] absmax() {
        return absmax == null ? null : absmax.clone();
    }

    /** The 8-bit codes of the block scales (double quantization), or null. */
    public byte[] absmaxCodes() {
        return absmaxCodes == null ? null : absmaxCodes.clone();
    }

    /** The fp32 absmax of each block of 256 scales (double quantization), or null. */
    public float[] nestedAbsmax() {
        return nestedAbsmax == null ? null : nestedAbsmax.clone();
    }

    /** The mean subtracted from the scales before their quantization (0 without double quantization). */
    public float nestedOffset() {
        return offset;
    }

    /** The 16-value code table. */
    public float[] quantMap() {
        return quantMap.clone();
    }

    /** The scale of every block: the absmax, or its reconstruction from the nested statistics. */
    public float[] scales() {
        return scaleArray().clone();
    }

    private float[] scaleArray() {
        if (absmax != null) {
            return absmax;
        }
        float[] s = scaleCache;
        if (s == null) {
            s = new float[absmaxCodes.length];
            for (int b = 0; b < s.length; b++) {
                s[b] = nestedMap[absmaxCodes[b] & 0xff] * nestedAbsmax[b / NESTED_BLOCK] + offset;
            }
            scaleCache = s;
        }
        return s;
    }

    // ---- dequantization --------------------------------------------------------------------------

    @Override
    public void dequantize(long from, int len, float[] dst, int off) {
        if (from < 0 || len < 0 || from + len > n) {
            throw new IndexOutOfBoundsException("values [" + from + ", " + (from + len) + ") outside [0, " + n + ")");
        }
        float[] scales = scaleArray();
        float[] map = quantMap;
        long end = from + len;
        long i = from;
        int o = off;
        // a leading odd value: the low nibble of its byte
        if ((i & 1) == 1 && i < end) {
            dst[o++] = map[packed[(int) (i >> 1)] & 0x0f] * scales[(int) (i / blockSize)];
            i++;
        }
        while (i < end) {
            int b = (int) (i / blockSize);
            float scale = scales[b];
            long blockEnd = Math.min(end, (long) (b + 1) * blockSize);
            // pairs within the block (i is even here: blocks and the first pair start on even values)
            long pairsEnd = i + ((blockEnd - i) & ~1L);
            int p = (int) (i >> 1);
            for (; i < pairsEnd; i += 2) {
                int v = packed[p++] & 0xff;
                dst[o++] = map[v >>> 4] * scale;
                dst[o++] = map[v & 0x0f] * scale;
            }
            if (i < blockEnd) {
                // a trailing single value (the range ends inside a byte)
                dst[o++] = map[(packed[(int) (i >> 1)] & 0xff) >>> 4] * scale;
                i++;
            }
        }
    }

    // ---- storage -----------------------------------------------------------------------------------

    @Override
    public long storageBytes() {
        long bytes = packed.length + 4L * quantMap.length;
        if (absmax != null) {
            bytes += 4L * absmax.length;
        } else {
            bytes += absmaxCodes.length + 4L * nestedAbsmax.length + 4L * nestedMap.length + 4; // + offset
        }
        return bytes;
    }

    /** The bitsandbytes {@code Params4bit} tensors ({@link Bnb4bitStateDict}). */
    @Override
    public Map<String, INDArray> toStateDict(String prefix) {
        return Bnb4bitStateDict.toStateDict(this, prefix);
    }

    /**
     * Rebuilds a weight from its saved tensors: {@code tensors} maps the suffixes after
     * {@code <module>.weight} ({@code ""} for the packed bytes, {@code ".absmax"}, …) to values
     * ({@link Bnb4bitStateDict#fromStateDict}).
     *
     * @param where names the file and module for messages
     * @throws IllegalArgumentException if a piece is missing, or the scales do not match the codes
     */
    static Quantized4bit fromStateDict(Map<String, INDArray> tensors, String where) {
        return Bnb4bitStateDict.fromStateDict(tensors, where);
    }

    @Override
    public String toString() {
        return "Quantized4bit(" + type.id() + ", shape=" + Arrays.toString(shape) + ", blocksize=" + blockSize
                + (isDoubleQuant() ? ", double-quant" : "") + ")";
    }
}
