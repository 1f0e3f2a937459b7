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

/**
 * A {@link Quantized4bit} as bitsandbytes saves a {@code Params4bit}
 * ({@code QuantState.as_dict(packed=True)}): under {@code <module>.weight} the packed bytes as U8
 * {@code [ceil(n/2), 1]}, then {@code weight.absmax} (F32, or U8 codes with double quantization),
 * {@code weight.quant_map} (F32 [16]), {@code weight.nested_absmax} (F32),
 * {@code weight.nested_quant_map} (F32 [256]) and
 * {@code weight.quant_state.bitsandbytes__<nf4|fp4>}: U8 bytes of the JSON
 * {@code {"quant_type", "blocksize", "dtype", "shape", "nested_blocksize", "nested_dtype", "nested_offset"}}.
 */
final class Bnb4bitStateDict {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Bnb4bitStateDict() {
    }

    /** The tensors of {@code q} under {@code <prefix>.weight} (or {@code weight} for an empty prefix). */
    static Map<String, INDArray> toStateDict(Quantized4bit q, String prefix) {
        String w = prefix.isEmpty() ? "weight" : prefix + ".weight";
        Map<String, INDArray> out = new LinkedHashMap<>();
        out.put(w, NativeArrays.uint8(q.packed, q.packed.length, 1));
        if (q.absmax != null) {
            out.put(w + ".absmax", NativeArrays.float32(q.absmax));
        } else {
            out.put(w + ".absmax", NativeArrays.uint8(q.absmaxCodes, q.absmaxCodes.length));
            out.put(w + ".nested_absmax", NativeArrays.float32(q.nestedAbsmax));
            out.put(w + ".nested_quant_map", NativeArrays.float32(q.nestedMap));
        }
        out.put(w + ".quant_map", NativeArrays.float32(q.quantMap));
        byte[] js = quantStateJson(q).getBytes(StandardCharsets.UTF_8);
        out.put(w + "." + Quantized4bit.QUANT_STATE_PREFIX + q.type.id(), NativeArrays.uint8(js, js.length));
        return out;
    }

    /** The JSON of {@code weight.quant_state.bitsandbytes__<type>} (json.dumps formatting). */
    static String quantStateJson(Quantized4bit q) {
        StringBuilder sb = new StringBuilder();
        sb.append("{\"quant_type\": \"").append(q.type.id()).append("\", \"blocksize\": ").append(q.blockSize)
                .append(", \"dtype\": \"float32\", \"shape\": [");
        for (int i = 0; i < q.shape.length; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(q.shape[i]);
        }
        sb.append(']');
        if (q.isDoubleQuant()) {
            sb.append(", \"nested_blocksize\": ").append(Quantized4bit.NESTED_BLOCK)
                    .append(", \"nested_dtype\": \"float32\", \"nested_offset\": ").append(pythonRepr(q.offset));
        }
        sb.append('}');
        return sb.toString();
    }

    /** A float32 value as a JSON number that parses back to the same double (Python stores {@code offset.item()}). */
    private static String pythonRepr(float f) {
        return Double.toString(f);
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
            if (k.startsWith("." + Quantized4bit.QUANT_STATE_PREFIX)) {
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
        QuantType type = QuantType.parse(state.path("quant_type").asText(stateKey.substring(Quantized4bit.QUANT_STATE_PREFIX.length() + 1)));
        if (!type.isFourBit() || !stateKey.endsWith(type.id())) {
            throw new IllegalArgumentException(where + ": quant_state says quant_type '" + type.id() + "' but its key is weight" + stateKey);
        }
        int blockSize = state.path("blocksize").asInt(-1);
        try {
            Quantized4bit.checkBlockSize(blockSize);
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
        long n = Quantized4bit.numel(shape);
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
            return Quantized4bit.plain(type, blockSize, shape, packed, map, absmax);
        }
        int nestedBlock = state.path("nested_blocksize").asInt(Quantized4bit.NESTED_BLOCK);
        if (nestedBlock != Quantized4bit.NESTED_BLOCK) {
            throw new IllegalArgumentException(where + ": nested_blocksize " + nestedBlock + " is not supported (bitsandbytes uses "
                    + Quantized4bit.NESTED_BLOCK + ")");
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
        int nNested = (nBlocks + Quantized4bit.NESTED_BLOCK - 1) / Quantized4bit.NESTED_BLOCK;
        if (nestedAbsmax.length != nNested) {
            throw new IllegalArgumentException(where + ": weight.nested_absmax has " + nestedAbsmax.length + " values, "
                    + nBlocks + " scales in blocks of " + Quantized4bit.NESTED_BLOCK + " need " + nNested);
        }
        float[] nestedMap = NativeArrays.floats(require(tensors, ".nested_quant_map", where));
        if (nestedMap.length != 256) {
            throw new IllegalArgumentException(where + ": weight.nested_quant_map has " + nestedMap.length + " values, expected 256");
        }
        if (!state.has("nested_offset")) {
            throw new IllegalArgumentException(where + ": quant_state lacks nested_offset");
        }
        float offset = (float) state.get("nested_offset").asDouble();
        return Quantized4bit.nested(type, blockSize, shape, packed, map, codes, nestedAbsmax, nestedMap, offset);
    }

    private static INDArray require(Map<String, INDArray> t, String suffix, String where) {
        INDArray a = t.get(suffix);
        if (a == null) {
            throw new IllegalArgumentException(where + ": missing tensor weight" + suffix);
        }
        return a;
    }
}
