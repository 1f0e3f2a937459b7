package org.peft4j.quant;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * A weight quantized block-wise to 4 bits exactly as bitsandbytes' {@code quantize_4bit} does it
 * (its reference/CPU kernel), optionally with double quantization of the block scales.
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
 *
 * <p>Dequantization: {@code code[q] · scale} in float32.
 *
 * <p>Saved like bitsandbytes' {@code Params4bit} ({@code QuantState.as_dict(packed=True)}): under
 * {@code <module>.weight} the packed bytes as U8 {@code [ceil(n/2), 1]}, then
 * {@code weight.absmax} (F32, or U8 codes with double quantization), {@code weight.quant_map}
 * (F32 [16]), {@code weight.nested_absmax} (F32), {@code weight.nested_quant_map} (F32 [256]) and
 * {@code weight.quant_state.bitsandbytes__<nf4|fp4>}: U8 bytes of the JSON
 * {@code {"quant_type", "blocksize", "dtype", "shape", "nested_blocksize", "nested_dtype", "nested_offset"}}.
 */
public final class Quantized4bit implements QuantizedTensor {
    public static final int MIN_BLOCK = 32;
    public static final int MAX_BLOCK = 4096;
    public static final int NESTED_BLOCK = 256;
    public static final String QUANT_STATE_PREFIX = "quant_state.bitsandbytes__";

    private static final ObjectMapper JSON = new ObjectMapper();
    /** Values processed per parallel task when quantizing or dequantizing large weights. */
    static final int CHUNK = 1 << 16;

    private final QuantType type;
    private final int blockSize;
    private final long[] shape;
    private final long n;
    private final byte[] packed;
    private final float[] quantMap;
    // plain statistics
    private final float[] absmax;
    // nested statistics
    private final byte[] absmaxCodes;
    private final float[] nestedAbsmax;
    private final float[] nestedMap;
    private final float offset;
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

    // ---- quantization ------------------------------------------------------------------------------

    /**
     * Quantizes {@code values} (the flattened weight of shape {@code shape}) to {@code type}
     * (NF4 or FP4) in blocks of {@code blockSize}, with double quantization of the scales if asked.
     */
    public static Quantized4bit quantize(float[] values, long[] shape, QuantType type, int blockSize, boolean doubleQuant) {
        if (type == null || !type.isFourBit()) {
            throw new IllegalArgumentException("4-bit quantization needs NF4 or FP4, got " + type);
        }
        checkBlockSize(blockSize);
        long n = numel(shape);
        if (n != values.length || n == 0) {
            throw new IllegalArgumentException("cannot quantize " + values.length + " values as shape " + Arrays.toString(shape));
        }
        int nBlocks = (int) ((n + blockSize - 1) / blockSize);
        float[] absmax = new float[nBlocks];
        byte[] packed = new byte[(int) ((n + 1) / 2)];
        Nearest4 nearest = new Nearest4(QuantMaps.fourBit(type));
        int blocksPerChunk = Math.max(1, CHUNK / blockSize);
        int chunks = (nBlocks + blocksPerChunk - 1) / blocksPerChunk;
        IntStream range = IntStream.range(0, chunks);
        if (n >= 4L * CHUNK) {
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
            return new Quantized4bit(type, blockSize, shape, packed, map, absmax, null, null, null, 0f);
        }
        Nested nested = quantizeNested(absmax);
        return new Quantized4bit(type, blockSize, shape, packed, map, null, nested.codes, nested.absmax2,
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
        Blockwise8 q = Blockwise8.quantize(centered, NESTED_BLOCK, QuantMaps.dynamicSignedCpu());
        return new Nested(q.codes(), q.absmax(), offset);
    }

    /**
     * bitsandbytes' CPU 8-bit blockwise quantization ({@code quantize_block} in csrc/common.cpp) of
     * {@code values} with the ascending 256-value {@code map}.
     */
    record Blockwise8(byte[] codes, float[] absmax) {
        static Blockwise8 quantize(float[] values, int blockSize, float[] map) {
            int n = values.length;
            int nBlocks = (n + blockSize - 1) / blockSize;
            float[] absmax = new float[nBlocks];
            byte[] codes = new byte[n];
            int zero = nearestToZero(map);
            for (int b = 0; b < nBlocks; b++) {
                int start = b * blockSize;
                int end = Math.min(n, start + blockSize);
                float m = 0f;
                for (int i = start; i < end; i++) {
                    m = Math.max(m, Math.abs(values[i]));
                }
                absmax[b] = m;
                for (int i = start; i < end; i++) {
                    if (m == 0f) {
                        // 0/0: undefined in bitsandbytes' kernel; the code of 0 reconstructs 0 exactly
                        codes[i] = (byte) zero;
                        continue;
                    }
                    float normed = values[i] / m;
                    int idx = leftIndex(map, normed);
                    if (idx < map.length - 1) {
                        float dl = Math.abs(normed - map[idx]);
                        float dr = Math.abs(normed - map[idx + 1]);
                        if (dr < dl) {
                            idx++;
                        }
                    }
                    codes[i] = (byte) idx;
                }
            }
            return new Blockwise8(codes, absmax);
        }

        /** The largest index with {@code map[i] <= v} (0 if none). */
        private static int leftIndex(float[] map, float v) {
            int lo = 0;
            int hi = map.length - 1;
            if (!(v >= map[0])) {
                return 0;
            }
            while (lo < hi) {
                int mid = (lo + hi + 1) >>> 1;
                if (map[mid] <= v) {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            return lo;
        }

        private static int nearestToZero(float[] map) {
            int best = 0;
            for (int i = 1; i < map.length; i++) {
                if (Math.abs(map[i]) < Math.abs(map[best])) {
                    best = i;
                }
            }
            return best;
        }
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

    /** The JSON of {@code weight.quant_state.bitsandbytes__<type>} (json.dumps formatting). */
    String quantStateJson() {
        StringBuilder sb = new StringBuilder();
        sb.append("{\"quant_type\": \"").append(type.id()).append("\", \"blocksize\": ").append(blockSize)
                .append(", \"dtype\": \"float32\", \"shape\": [");
        for (int i = 0; i < shape.length; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(shape[i]);
        }
        sb.append(']');
        if (isDoubleQuant()) {
            sb.append(", \"nested_blocksize\": ").append(NESTED_BLOCK).append(", \"nested_dtype\": \"float32\", \"nested_offset\": ")
                    .append(pythonRepr(offset));
        }
        sb.append('}');
        return sb.toString();
    }

    /** A float32 value as a JSON number that parses back to the same double (Python stores {@code offset.item()}). */
    private static String pythonRepr(float f) {
        return Double.toString(f);
    }

    @Override
    public Map<String, INDArray> toStateDict(String prefix) {
        String w = prefix.isEmpty() ? "weight" : prefix + ".weight";
        Map<String, INDArray> out = new LinkedHashMap<>();
        out.put(w, NativeArrays.uint8(packed, packed.length, 1));
        if (absmax != null) {
            out.put(w + ".absmax", NativeArrays.float32(absmax));
        } else {
            out.put(w + ".absmax", NativeArrays.uint8(absmaxCodes, absmaxCodes.length));
            out.put(w + ".nested_absmax", NativeArrays.float32(nestedAbsmax));
            out.put(w + ".nested_quant_map", NativeArrays.float32(nestedMap));
        }
        out.put(w + ".quant_map", NativeArrays.float32(quantMap));
        byte[] js = quantStateJson().getBytes(StandardCharsets.UTF_8);
        out.put(w + "." + QUANT_STATE_PREFIX + type.id(), NativeArrays.uint8(js, js.length));
        return out;
    }

    /**
     * Rebuilds a weight from its saved tensors: {@code tensors} maps the suffixes after
     * {@code <module>.weight} ({@code ""} for the packed bytes, {@code ".absmax"}, …) to values.
     *
     * @param where names the file and module for messages
     * @throws IllegalArgumentException if a piece is missing, or the scales do not match the codes
     */
    static Quantized4bit fromStateDict(Map<String, INDArray> tensors, String where) {
        String stateKey = null;
        for (String k : tensors.keySet()) {
            if (k.startsWith("." + QUANT_STATE_PREFIX)) {
                if (stateKey != null) {
                    throw new IllegalArgumentException(where + ": two quant_state entries (" + stateKey + ", " + k + ")");
                }
                stateKey = k;
            }
        }
        if (stateKey == null) {
            throw new IllegalArgumentException(where + ": no weight.quant_state.bitsandbytes__nf4|fp4 entry");
        }
        JsonNode state;
        try {
            state = JSON.readTree(new String(NativeArrays.bytes(tensors.get(stateKey)), StandardCharsets.UTF_8));
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException(where + ": weight" + stateKey + " is not valid JSON: " + e.getMessage(), e);
        }
        QuantType type = QuantType.parse(state.path("quant_type").asText(stateKey.substring(QUANT_STATE_PREFIX.length() + 1)));
        if (!type.isFourBit() || !stateKey.endsWith(type.id())) {
            throw new IllegalArgumentException(where + ": quant_state says quant_type '" + type.id() + "' but its key is weight" + stateKey);
        }
        int blockSize = state.path("blocksize").asInt(-1);
        try {
            checkBlockSize(blockSize);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
        JsonNode shapeNode = state.get("shape");
        if (!(shapeNode instanceof ArrayNode) || shapeNode.size() == 0) {
            throw new IllegalArgumentException(where + ": quant_state has no shape");
        }
        long[] shape = new long[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = shapeNode.get(i).asLong();
        }
        String dtype = state.path("dtype").asText("float32");
        if (!dtype.equals("float32") && !dtype.equals("float16") && !dtype.equals("bfloat16")) {
            throw new IllegalArgumentException(where + ": unsupported compute dtype '" + dtype + "'");
        }
        long n = numel(shape);
        int nBlocks = (int) ((n + blockSize - 1) / blockSize);
        INDArray packedArr = require(tensors, "", where);
        byte[] packed = NativeArrays.bytes(packedArr);
        if (packed.length != (n + 1) / 2) {
            throw new IllegalArgumentException(where + ": packed weight has " + packed.length + " bytes but shape "
                    + Arrays.toString(shape) + " needs " + ((n + 1) / 2) + " (two 4-bit codes per byte)");
        }
        float[] map = NativeArrays.floats(require(tensors, ".quant_map", where));
        if (map.length != 16) {
            throw new IllegalArgumentException(where + ": weight.quant_map has " + map.length + " values, expected 16");
        }
        INDArray absArr = require(tensors, ".absmax", where);
        boolean nested = tensors.containsKey(".nested_absmax") || state.has("nested_blocksize");
        if (!nested) {
            float[] absmax = NativeArrays.floats(absArr);
            if (absmax.length != nBlocks) {
                throw new IllegalArgumentException(where + ": weight.absmax has " + absmax.length + " scales but "
                        + n + " values in blocks of " + blockSize + " need " + nBlocks + " (scales do not match the codes)");
            }
            return new Quantized4bit(type, blockSize, shape, packed, map, absmax, null, null, null, 0f);
        }
        int nestedBlock = state.path("nested_blocksize").asInt(NESTED_BLOCK);
        if (nestedBlock != NESTED_BLOCK) {
            throw new IllegalArgumentException(where + ": nested_blocksize " + nestedBlock + " is not supported (bitsandbytes uses "
                    + NESTED_BLOCK + ")");
        }
        if (absArr.dataType() != DataType.UINT8) {
            throw new IllegalArgumentException(where + ": weight.absmax must be U8 codes with double quantization, found "
                    + absArr.dataType());
        }
        byte[] codes = NativeArrays.bytes(absArr);
        if (codes.length != nBlocks) {
            throw new IllegalArgumentException(where + ": weight.absmax has " + codes.length + " codes but " + n
                    + " values in blocks of " + blockSize + " need " + nBlocks + " (scales do not match the codes)");
        }
        float[] nestedAbsmax = NativeArrays.floats(require(tensors, ".nested_absmax", where));
        int nNested = (nBlocks + NESTED_BLOCK - 1) / NESTED_BLOCK;
        if (nestedAbsmax.length != nNested) {
            throw new IllegalArgumentException(where + ": weight.nested_absmax has " + nestedAbsmax.length + " values, "
                    + nBlocks + " scales in blocks of " + NESTED_BLOCK + " need " + nNested);
        }
        float[] nestedMap = NativeArrays.floats(require(tensors, ".nested_quant_map", where));
        if (nestedMap.length != 256) {
            throw new IllegalArgumentException(where + ": weight.nested_quant_map has " + nestedMap.length + " values, expected 256");
        }
        if (!state.has("nested_offset")) {
            throw new IllegalArgumentException(where + ": quant_state lacks nested_offset");
        }
        float offset = (float) state.get("nested_offset").asDouble();
        return new Quantized4bit(type, blockSize, shape, packed, map, null, codes, nestedAbsmax, nestedMap, offset);
    }

    private static INDArray require(Map<String, INDArray> t, String suffix, String where) {
        INDArray a = t.get(suffix);
        if (a == null) {
            throw new IllegalArgumentException(where + ": missing tensor weight" + suffix);
        }
        return a;
    }

    @Override
    public String toString() {
        return "Quantized4bit(" + type.id() + ", shape=" + Arrays.toString(shape) + ", blocksize=" + blockSize
                + (isDoubleQuant() ? ", double-quant" : "") + ")";
    }
}
