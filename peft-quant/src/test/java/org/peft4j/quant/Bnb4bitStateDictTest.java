package org.peft4j.quant;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.tensor.Rng;

import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The bitsandbytes Params4bit layout of a 4-bit weight, apart from how the weight was quantized. */
class Bnb4bitStateDictTest {
    private static float[] gaussian(int n, long seed) {
        Rng rng = new Rng(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rng.nextGaussian();
        }
        return x;
    }

    /** The saved tensors with {@code <prefix>.weight} stripped, as fromStateDict takes them. */
    private static Map<String, INDArray> suffixes(Map<String, INDArray> sd, String prefix) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        sd.forEach((k, v) -> out.put(k.substring((prefix + ".weight").length()), v));
        return out;
    }

    @Test
    void plainWeightKeysShapesAndQuantState() {
        Quantized4bit q = Quantized4bit.quantize(gaussian(3 * 64, 1), new long[]{3, 64}, QuantType.NF4, 64, false);
        Map<String, INDArray> sd = Bnb4bitStateDict.toStateDict(q, "fc");
        assertEquals(List.of("fc.weight", "fc.weight.absmax", "fc.weight.quant_map", "fc.weight.quant_state.bitsandbytes__nf4"),
                List.copyOf(sd.keySet()));
        assertArrayEquals(new long[]{96, 1}, sd.get("fc.weight").shape(), "two 4-bit codes per byte, [ceil(n/2), 1]");
        assertEquals(DataType.UINT8, sd.get("fc.weight").dataType());
        assertArrayEquals(new long[]{3}, sd.get("fc.weight.absmax").shape());
        assertArrayEquals(new long[]{16}, sd.get("fc.weight.quant_map").shape());
        String js = new String(NativeArrays.bytes(sd.get("fc.weight.quant_state.bitsandbytes__nf4")), StandardCharsets.UTF_8);
        assertEquals("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [3, 64]}", js);
    }

    @Test
    void doubleQuantizedWeightRoundTripsExactly() {
        float[] x = gaussian(300 * 64, 2);   // 300 blocks: two nested blocks of 256 scales, the second partial
        Quantized4bit q = Quantized4bit.quantize(x, new long[]{300, 64}, QuantType.FP4, 64, true);
        Map<String, INDArray> sd = Bnb4bitStateDict.toStateDict(q, "m");
        assertEquals(DataType.UINT8, sd.get("m.weight.absmax").dataType());
        assertArrayEquals(new long[]{2}, sd.get("m.weight.nested_absmax").shape());
        assertArrayEquals(new long[]{256}, sd.get("m.weight.nested_quant_map").shape());
        String js = new String(NativeArrays.bytes(sd.get("m.weight.quant_state.bitsandbytes__fp4")), StandardCharsets.UTF_8);
        assertTrue(js.startsWith("{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [300, 64], "
                + "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": "), js);
        assertEquals(q.nestedOffset(), Float.parseFloat(js.substring(js.lastIndexOf(": ") + 2, js.length() - 1)), 0f);

        Quantized4bit back = Bnb4bitStateDict.fromStateDict(suffixes(sd, "m"), "test m");
        assertEquals(QuantType.FP4, back.type());
        assertArrayEquals(q.packedCodes(), back.packedCodes());
        assertArrayEquals(q.scales(), back.scales(), 0f);
        assertArrayEquals(q.dequantize(), back.dequantize(), 0f);
    }

    @Test
    void aMissingPieceIsNamed() {
        Quantized4bit q = Quantized4bit.quantize(gaussian(128, 3), new long[]{2, 64}, QuantType.NF4, 64, false);
        Map<String, INDArray> parts = suffixes(Bnb4bitStateDict.toStateDict(q, "x"), "x");
        parts.remove(".quant_map");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Bnb4bitStateDict.fromStateDict(parts, "model.safetensors, module x"));
        assertTrue(e.getMessage().contains("model.safetensors, module x") && e.getMessage().contains("weight.quant_map"),
                e.getMessage());
    }
}
