package org.peft4j.core.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Cross-checks against {@code scripts/make_safetensors_fixture.py}, an independent numpy
 * implementation: its file and expected values live in {@code src/test/resources/io/}. Every
 * value is compared bit for bit (F16/BF16 widened exactly), so the expected numbers are not
 * produced by the code under test.
 */
class SafeTensorsFixtureTest {
    private static JsonNode expected;
    private static byte[] fixtureBytes;

    @TempDir
    Path tmp;

    @BeforeAll
    static void loadExpected() throws IOException {
        expected = new ObjectMapper().readTree(IoTestSupport.resource("/io/fixture_expected.json"));
        fixtureBytes = IoTestSupport.resource("/io/fixture.safetensors");
    }

    private Path fixtureFile() throws IOException {
        Path p = tmp.resolve("fixture.safetensors");
        Files.write(p, fixtureBytes);
        return p;
    }

    private static long[] longs(JsonNode arr) {
        long[] out = new long[arr.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = arr.get(i).longValue();
        }
        return out;
    }

    @Test
    void headerMatchesTheIndependentWriter() throws IOException {
        try (SafeTensorsFile f = SafeTensorsFile.open(fixtureFile())) {
            List<String> order = new ArrayList<>();
            expected.get("data_order").forEach(n -> order.add(n.textValue()));
            assertEquals(order, f.keys());
            assertEquals(expected.get("header_length").longValue(), f.headerLength());
            Map<String, String> md = new LinkedHashMap<>();
            expected.get("metadata").fields().forEachRemaining(e -> md.put(e.getKey(), e.getValue().textValue()));
            assertEquals(md, f.metadata());
            assertEquals("h\u00e9llo \u2713", f.metadata().get("unicode"));
            for (Iterator<Map.Entry<String, JsonNode>> it = expected.get("tensors").fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                TensorInfo info = f.info(e.getKey());
                assertEquals(e.getValue().get("dtype").textValue(), info.dtypeName(), e.getKey());
                assertArrayEquals(longs(e.getValue().get("shape")), info.shape(), e.getKey());
            }
            assertEquals(0, f.dataStart() % 8, "data section is 8-byte aligned");
        }
    }

    @Test
    void valuesMatchBitForBitWithWidening() throws IOException {
        Map<String, INDArray> all = SafeTensors.load(fixtureFile());
        assertEquals(expected.get("tensors").size(), all.size());
        for (Iterator<Map.Entry<String, JsonNode>> it = expected.get("tensors").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String key = e.getKey();
            JsonNode exp = e.getValue();
            INDArray a = all.get(key);
            assertArrayEquals(longs(exp.get("shape")), a.shape(), key);
            String dtype = exp.get("dtype").textValue();
            switch (dtype) {
                case "F32", "F16", "BF16" -> {
                    assertEquals(DataType.FLOAT, a.dataType(), key);
                    long[] want = longs(exp.get("f32_bits"));
                    int[] got = IoTestSupport.floatBits(a);
                    assertEquals(want.length, got.length, key);
                    for (int i = 0; i < want.length; i++) {
                        assertEquals((int) want[i], got[i], key + "[" + i + "] bits");
                    }
                }
                case "F64" -> {
                    assertEquals(DataType.DOUBLE, a.dataType(), key);
                    long[] want = longs(exp.get("f64_bits"));
                    ByteBuffer b = ByteBuffer.wrap(IoTestSupport.rawBytes(a)).order(ByteOrder.nativeOrder());
                    for (int i = 0; i < want.length; i++) {
                        assertEquals(want[i], b.getLong(), key + "[" + i + "]");
                    }
                }
                case "I8", "U8", "I32", "I64" -> {
                    DataType dt = switch (dtype) {
                        case "I8" -> DataType.INT8;
                        case "U8" -> DataType.UINT8;
                        case "I32" -> DataType.INT32;
                        default -> DataType.INT64;
                    };
                    assertEquals(dt, a.dataType(), key);
                    long[] want = longs(exp.get("values"));
                    ByteBuffer b = ByteBuffer.wrap(IoTestSupport.rawBytes(a)).order(ByteOrder.nativeOrder());
                    for (int i = 0; i < want.length; i++) {
                        long got = switch (dtype) {
                            case "I8" -> b.get();
                            case "U8" -> b.get() & 0xff;
                            case "I32" -> b.getInt();
                            default -> b.getLong();
                        };
                        assertEquals(want[i], got, key + "[" + i + "]");
                    }
                }
                default -> throw new AssertionError("fixture has unexpected dtype " + dtype);
            }
        }
        // Spot checks through ND4J's own accessors (independent of our byte helpers).
        assertEquals(0, all.get("scalar").rank());
        assertEquals(3.5f, all.get("scalar").getFloat(0), 0f);
        assertTrue(all.get("empty").isEmpty());
        assertEquals(65504f, all.get("half.vector").getFloat(0, 3), 0f);
        assertEquals((float) Math.pow(2, -24), all.get("half.vector").getFloat(1, 0), 0f);
        assertEquals(-128, all.get("i8.values").getInt(0));
        assertEquals(255, all.get("u8.values").getInt(1, 1));
        assertEquals(Long.MIN_VALUE, all.get("i64.values").getLong(0));
        assertEquals(Long.MAX_VALUE, all.get("i64.values").getLong(3));
    }

    @Test
    void halfTypesWithoutWideningKeepTheirBits() throws IOException {
        try (SafeTensorsFile f = SafeTensorsFile.open(fixtureFile())) {
            for (String key : List.of("half.vector", "bf16.matrix")) {
                INDArray a = f.get(key, false);
                assertEquals(key.startsWith("half") ? DataType.HALF : DataType.BFLOAT16, a.dataType());
                long[] want = longs(expected.get("tensors").get(key).get("raw_bits"));
                ByteBuffer b = ByteBuffer.wrap(IoTestSupport.rawBytes(a)).order(ByteOrder.nativeOrder());
                for (int i = 0; i < want.length; i++) {
                    assertEquals(want[i], b.getShort() & 0xffff, key + "[" + i + "]");
                }
                // getBytes: the same bits, straight from the mapped file.
                ByteBuffer raw = f.getBytes(key);
                assertTrue(raw.isReadOnly());
                assertEquals(want.length * 2, raw.remaining());
                for (int i = 0; i < want.length; i++) {
                    assertEquals(want[i], raw.getShort(2 * i) & 0xffff, key + "[" + i + "]");
                }
            }
        }
    }

    @Test
    void javaWriterReproducesTheReferenceLayoutByteForByte() throws IOException {
        Map<String, INDArray> raw = SafeTensors.load(fixtureFile(), false);
        Map<String, String> md = new LinkedHashMap<>();
        expected.get("metadata").fields().forEachRemaining(e -> md.put(e.getKey(), e.getValue().textValue()));
        byte[] ours = SafeTensors.serialize(raw, md);
        assertEquals(new String(fixtureBytes, 8, (int) expected.get("header_length").longValue(), StandardCharsets.UTF_8),
                new String(ours, 8, (int) expected.get("header_length").longValue(), StandardCharsets.UTF_8));
        assertArrayEquals(fixtureBytes, ours);
        Path out = tmp.resolve("java.safetensors");
        SafeTensors.write(out, raw, md);
        assertArrayEquals(fixtureBytes, Files.readAllBytes(out));
    }

    /**
     * A file written by Java is read by the Python script's own reader and compared with the
     * expected values. Needs Debian's python3 with numpy (apt-get install python3-numpy); skipped
     * otherwise. By hand: {@code /usr/bin/python3 scripts/make_safetensors_fixture.py --verify
     * FILE peft-core/src/test/resources/io/fixture_expected.json}.
     */
    @Test
    void javaWrittenFileIsReadByTheIndependentReader() throws Exception {
        Path script = Path.of("..", "scripts", "make_safetensors_fixture.py").toAbsolutePath().normalize();
        Path python = Path.of("/usr/bin/python3");
        assumeTrue(Files.isRegularFile(script), "script not found at " + script);
        assumeTrue(Files.isExecutable(python), "no /usr/bin/python3");
        Process probe = new ProcessBuilder(python.toString(), "-c", "import numpy").redirectErrorStream(true).start();
        probe.getInputStream().readAllBytes();
        assumeTrue(probe.waitFor(60, TimeUnit.SECONDS) && probe.exitValue() == 0, "numpy missing for /usr/bin/python3");

        // Write with different in-memory layouts (views) to make sure the bytes on disk are logical row-major.
        Map<String, INDArray> raw = SafeTensors.load(fixtureFile(), false);
        INDArray w = raw.get("encoder.layer.0.weight");
        raw.put("encoder.layer.0.weight", w.transpose().dup('c').transpose()); // f-order layout, same values
        Map<String, String> md = new LinkedHashMap<>();
        expected.get("metadata").fields().forEachRemaining(e -> md.put(e.getKey(), e.getValue().textValue()));
        Path out = tmp.resolve("written-by-java.safetensors");
        SafeTensors.write(out, raw, md);
        Path exp = tmp.resolve("expected.json");
        Files.write(exp, IoTestSupport.resource("/io/fixture_expected.json"));

        Process p = new ProcessBuilder(python.toString(), script.toString(), "--verify", out.toString(), exp.toString())
                .redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "python timed out");
        assertEquals(0, p.exitValue(), "python verifier said:\n" + output);
        assertTrue(output.startsWith("OK"), output);
    }
}
