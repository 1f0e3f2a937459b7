package org.peft4j.quant;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * peft-quant against the committed independent numpy reference of bitsandbytes' algorithms
 * ({@code scripts/reference/quant_reference.py} → {@code fixtures/quant/}): the codes must match
 * bit for bit; scales, nested statistics and dequantized values within 1e-6.
 */
class ReferenceFixtureTest {
    private static Map<String, INDArray> ref;
    private static JsonNode cases;

    @BeforeAll
    static void load() throws Exception {
        Path dir = Path.of(ReferenceFixtureTest.class.getResource("/fixtures/quant/cases.json").toURI()).getParent();
        ref = SafeTensors.load(dir.resolve("reference.safetensors"));
        cases = new ObjectMapper().readTree(dir.resolve("cases.json").toFile()).get("cases");
    }

    private static float[] f(String key) {
        return NativeArrays.floats(ref.get(key));
    }

    private static void assertBitEqual(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what + " length");
        for (int i = 0; i < expected.length; i++) {
            assertEquals(Float.floatToIntBits(expected[i]), Float.floatToIntBits(actual[i]),
                    what + "[" + i + "]: expected " + expected[i] + ", got " + actual[i]);
        }
    }

    private static void assertClose(float[] expected, float[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what + " length");
        for (int i = 0; i < expected.length; i++) {
            double d = Math.abs((double) expected[i] - actual[i]);
            assertTrue(d <= tol, what + "[" + i + "]: expected " + expected[i] + ", got " + actual[i] + " (|diff| " + d + ")");
        }
    }

    private static List<Integer> mismatches(byte[] expected, byte[] actual) {
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < Math.min(expected.length, actual.length); i++) {
            if (expected[i] != actual[i]) {
                out.add(i);
            }
        }
        return out;
    }

    @Test
    void codeTablesMatchTheReference() {
        assertBitEqual(f("code.nf4"), QuantMaps.nf4(), "NF4 table");
        assertBitEqual(f("code.fp4"), QuantMaps.fp4(), "FP4 table");
        assertBitEqual(f("code.dynamic"), QuantMaps.dynamicSigned(), "dynamic map");
        assertBitEqual(f("code.dynamic_cpu"), QuantMaps.dynamicSignedCpu(), "dynamic map (CPU, code[0] = -1)");
    }

    @Test
    void fourBitCodesAreBitExactAndScalesWithin1e6() {
        int checked = 0;
        for (JsonNode c : cases) {
            String type = c.get("type").asText();
            if (type.equals("int8")) {
                continue;
            }
            String name = c.get("name").asText();
            float[] input = f("input." + c.get("input").asText());
            long[] shape = {c.get("shape").get(0).asLong(), c.get("shape").get(1).asLong()};
            boolean dq = c.get("double_quant").asBoolean();
            Quantized4bit q = Quantized4bit.quantize(input, shape, QuantType.parse(type), c.get("blocksize").asInt(), dq);

            byte[] expectedPacked = NativeArrays.bytes(ref.get(name + ".packed"));
            byte[] packed = q.packedCodes();
            assertEquals(expectedPacked.length, packed.length, name + ": packed length");
            List<Integer> bad = mismatches(expectedPacked, packed);
            assertTrue(bad.isEmpty(), name + ": " + bad.size() + " packed bytes differ, first at " + (bad.isEmpty() ? -1 : bad.get(0)));

            float[] expectedAbsmax = f(name + ".absmax");
            if (!dq) {
                assertClose(expectedAbsmax, q.absmax(), 1e-6, name + ": absmax");
            } else {
                byte[] expectedCodes = NativeArrays.bytes(ref.get(name + ".nested_codes"));
                List<Integer> badNested = mismatches(expectedCodes, q.absmaxCodes());
                assertEquals(expectedCodes.length, q.absmaxCodes().length, name + ": nested code count");
                assertTrue(badNested.isEmpty(), name + ": " + badNested.size() + " nested codes differ");
                assertClose(f(name + ".nested_absmax"), q.nestedAbsmax(), 1e-6, name + ": nested absmax");
                assertClose(f(name + ".nested_offset"), new float[]{q.nestedOffset()}, 1e-6, name + ": nested offset");
                assertClose(f(name + ".scales"), q.scales(), 1e-6, name + ": reconstructed scales");
            }
            assertClose(f(name + ".dequantized"), q.dequantize(), 1e-6, name + ": dequantized");
            checked++;
        }
        assertEquals(12, checked, "4-bit cases in the fixture");
    }

    @Test
    void int8CodesAreBitExact() {
        int checked = 0;
        for (JsonNode c : cases) {
            if (!c.get("type").asText().equals("int8")) {
                continue;
            }
            String name = c.get("name").asText();
            float[] input = f("input." + c.get("input").asText());
            int rows = c.get("shape").get(0).asInt();
            int cols = c.get("shape").get(1).asInt();
            QuantizedInt8 q = QuantizedInt8.quantize(input, rows, cols, (float) c.get("threshold").asDouble());
            byte[] expected = NativeArrays.bytes(ref.get(name + ".weight"));
            List<Integer> bad = mismatches(expected, q.codes());
            assertTrue(bad.isEmpty(), name + ": " + bad.size() + " int8 codes differ");
            assertClose(f(name + ".SCB"), q.rowScales(), 1e-6, name + ": SCB");
            long[] cols2 = ref.get(name + ".outlier_cols").toLongVector();
            int[] expectedCols = new int[cols2.length];
            for (int i = 0; i < cols2.length; i++) {
                expectedCols[i] = (int) cols2[i];
            }
            assertArrayEquals(expectedCols, q.outlierColumns(), name + ": outlier columns");
            assertClose(f(name + ".dequantized"), q.dequantize(), 1e-6, name + ": dequantized");
            checked++;
        }
        assertEquals(2, checked);
    }
}
