package org.peft4j.core.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Malformed files: every rule of the reference reader, each failure naming the file (and key). */
class SafeTensorsValidationTest {
    @TempDir
    Path tmp;

    private Path file(String name, byte[] bytes) throws IOException {
        Path p = tmp.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    /** Opens {@code bytes} as a file and returns the exception, asserting it names the file. */
    private SafeTensorsException fail(String name, byte[] bytes) throws IOException {
        Path p = file(name, bytes);
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensorsFile.open(p).close());
        assertTrue(e.getMessage().startsWith(p.toString() + ": "), e.getMessage());
        assertEquals(p, e.file());
        return e;
    }

    private SafeTensorsException failWithKey(String name, String header, int dataLen, String key, String... words)
            throws IOException {
        SafeTensorsException e = fail(name, IoTestSupport.craft(header, dataLen));
        assertEquals(key, e.key(), e.getMessage());
        assertTrue(e.getMessage().contains("tensor '" + key + "'"), e.getMessage());
        for (String w : words) {
            assertTrue(e.getMessage().contains(w), "expected '" + w + "' in: " + e.getMessage());
        }
        return e;
    }

    private static String entry(String key, String dtype, String shape, long b, long e) {
        return "\"" + key + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + b + "," + e + "]}";
    }

    @Test
    void validCraftedFileOpens() throws IOException {
        // Header entries in any order are fine: the reference sorts them by offsets.
        String h = "{" + entry("b", "F32", "[2]", 8, 16) + "," + entry("a", "F32", "[2]", 0, 8) + "}";
        try (SafeTensorsFile f = SafeTensorsFile.open(file("ok.safetensors", IoTestSupport.craft(h, 16)))) {
            assertEquals(java.util.List.of("a", "b"), f.keys());
        }
    }

    @Test
    void fileShorterThanEightBytes() throws IOException {
        for (int n : new int[]{0, 1, 7}) {
            SafeTensorsException e = fail("short" + n + ".safetensors", new byte[n]);
            assertNull(e.key());
            assertTrue(e.getMessage().contains("too short"), e.getMessage());
        }
    }

    @Test
    void truncatedFileAtSeveralPoints() throws IOException {
        Map<String, org.nd4j.linalg.api.ndarray.INDArray> m = new LinkedHashMap<>();
        m.put("layer.weight", Nd4j.rand(DataType.FLOAT, 4, 4));
        m.put("layer.bias", Nd4j.rand(DataType.FLOAT, 4));
        byte[] whole = SafeTensors.serialize(m, Map.of("format", "pt"));
        int headerLen = (int) ByteBuffer.wrap(whole).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        int dataStart = 8 + headerLen;
        // Data order is layer.bias [0,16) then layer.weight [16,80) (same dtype, so by name).
        int[] cuts = {3, 8, 20, dataStart - 1, dataStart, dataStart + 10, dataStart + 17, whole.length - 1};
        for (int cut : cuts) {
            SafeTensorsException e = fail("cut" + cut + ".safetensors", Arrays.copyOf(whole, cut));
            if (cut < 8) {
                assertTrue(e.getMessage().contains("too short"), e.getMessage());
            } else if (cut < dataStart) {
                assertTrue(e.getMessage().contains("beyond the end of the file"), e.getMessage());
            } else {
                String key = cut < dataStart + 16 ? "layer.bias" : "layer.weight";
                assertEquals(key, e.key(), e.getMessage());
                assertTrue(e.getMessage().contains("tensor '" + key + "'") && e.getMessage().contains("outside the data section"),
                        e.getMessage());
            }
        }
        // Sanity: the whole file is fine.
        try (SafeTensorsFile f = SafeTensorsFile.open(file("whole.safetensors", whole))) {
            assertEquals(2, f.size());
        }
    }

    @Test
    void headerLengthAbove100MB() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(100_000_001L);
        SafeTensorsException e = fail("huge.safetensors", b.array());
        assertTrue(e.getMessage().contains("100000001") && e.getMessage().contains("HeaderTooLarge"), e.getMessage());
        // A u64 above 2^63 (negative as a Java long) is too large too.
        b.putLong(0, -5L);
        e = fail("huge2.safetensors", b.array());
        assertTrue(e.getMessage().contains(Long.toUnsignedString(-5L)), e.getMessage());
        // Exactly the limit is allowed by the size rule (then fails because the file is shorter).
        b.putLong(0, 100_000_000L);
        e = fail("limit.safetensors", b.array());
        assertTrue(e.getMessage().contains("beyond the end of the file"), e.getMessage());
    }

    @Test
    void headerLengthBeyondFile() throws IOException {
        byte[] bytes = IoTestSupport.craft("{}      ", 0);
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1000);
        SafeTensorsException e = fail("beyond.safetensors", bytes);
        assertTrue(e.getMessage().contains("header length 1000") && e.getMessage().contains("InvalidHeaderLength"),
                e.getMessage());
    }

    @Test
    void garbageBytes() throws IOException {
        Random r = new Random(7);
        for (int i = 0; i < 5; i++) {
            byte[] g = new byte[200];
            r.nextBytes(g);
            fail("garbage" + i + ".safetensors", g);
        }
        // A plausible length followed by garbage: not UTF-8 / not JSON.
        byte[] g = new byte[8 + 32];
        r.nextBytes(g);
        ByteBuffer.wrap(g).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 32);
        g[8] = (byte) 0xff; // invalid UTF-8 start byte
        SafeTensorsException e = fail("garbage-header.safetensors", g);
        assertTrue(e.getMessage().contains("UTF-8"), e.getMessage());
    }

    @Test
    void invalidJson() throws IOException {
        SafeTensorsException e = fail("json1.safetensors", IoTestSupport.craft("{\"a\":{\"dtype\":\"F32\",", 0));
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
        e = fail("json2.safetensors", IoTestSupport.craft("[1,2,3]", 0));
        assertTrue(e.getMessage().contains("must be a JSON object"), e.getMessage());
        e = fail("json3.safetensors", IoTestSupport.craft("{} trailing", 0));
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
        e = fail("json4.safetensors", IoTestSupport.craft("", 0));
        assertTrue(e.getMessage().contains("JSON"), e.getMessage());
        // Duplicate keys are ambiguous: rejected (the reference would keep the last one).
        String dup = "{" + entry("a", "U8", "[1]", 0, 1) + "," + entry("a", "U8", "[1]", 0, 1) + "}";
        e = fail("dup.safetensors", IoTestSupport.craft(dup, 1));
        assertTrue(e.getMessage().contains("Duplicate") && e.getMessage().contains("a"), e.getMessage());
    }

    @Test
    void entriesWithMissingOrBadFields() throws IOException {
        failWithKey("nodtype.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "w", "dtype");
        failWithKey("noshape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "w", "shape");
        failWithKey("nooffsets.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "w", "data_offsets");
        failWithKey("notobject.safetensors", "{\"w\":[1,2]}", 0, "w", "JSON object");
        failWithKey("threeoffsets.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, "w",
                "data_offsets");
        failWithKey("negshape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "w",
                "non-negative");
        failWithKey("floatshape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, "w",
                "non-negative integers");
        failWithKey("reversed.safetensors", "{" + entry("w", "U8", "[0]", 4, 0) + "}", 4, "w", "end before");
        failWithKey("meta.safetensors", "{\"__metadata__\":{\"epoch\":3}}", 0, "__metadata__", "epoch", "string");
        failWithKey("meta2.safetensors", "{\"__metadata__\":[\"x\"]}", 0, "__metadata__", "object");
    }

    @Test
    void overlappingOffsets() throws IOException {
        String h = "{" + entry("a", "F32", "[4]", 0, 16) + "," + entry("b", "F32", "[4]", 8, 24) + "}";
        failWithKey("overlap.safetensors", h, 24, "b", "overlap", "'a'", "[8, 24]");
    }

    @Test
    void gapsAndUnusedBytes() throws IOException {
        String gap = "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 12, 20) + "}";
        failWithKey("gap.safetensors", gap, 20, "b", "gap of 4 bytes", "'a'");
        String late = "{" + entry("a", "F32", "[2]", 4, 12) + "}";
        failWithKey("late.safetensors", late, 12, "a", "must begin at 0");
        // Data section longer than the tensors (MetadataIncompleteBuffer).
        String tail = "{" + entry("a", "F32", "[2]", 0, 8) + "}";
        SafeTensorsException e = failWithKey("trailing.safetensors", tail, 12, "a", "cover 8 bytes", "holds 12 bytes");
        assertTrue(e.getMessage().contains("MetadataIncompleteBuffer"), e.getMessage());
        // No tensors but data bytes.
        e = fail("nodata.safetensors", IoTestSupport.craft("{}", 4));
        assertTrue(e.getMessage().contains("cover 0 bytes"), e.getMessage());
    }

    @Test
    void offsetsOutsideTheDataSection() throws IOException {
        String h = "{" + entry("a", "F32", "[16]", 0, 64) + "}";
        failWithKey("outside.safetensors", h, 16, "a", "outside the data section of 16 bytes");
        String far = "{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("b", "F32", "[1]", 1000, 1004) + "}";
        failWithKey("far.safetensors", far, 4, "b", "outside");
    }

    @Test
    void shapeAndByteSizeMismatch() throws IOException {
        String h = "{" + entry("w", "F32", "[2,2]", 0, 12) + "}";
        failWithKey("mismatch.safetensors", h, 12, "w", "needs 4 × 4 = 16 bytes", "span 12 bytes", "[2, 2]");
        String h16 = "{" + entry("w", "BF16", "[3]", 0, 4) + "}";
        failWithKey("mismatch16.safetensors", h16, 4, "w", "BF16", "6 bytes");
        String overflow = "{" + entry("w", "F32", "[4611686018427387904,4]", 0, 0) + "}";
        failWithKey("overflow.safetensors", overflow, 0, "w", "overflow");
    }

    @Test
    void unknownDtype() throws IOException {
        String h = "{" + entry("layer.0.w", "F12", "[1]", 0, 4) + "}";
        failWithKey("dtype.safetensors", h, 4, "layer.0.w", "unknown dtype 'F12'");
        String notString = "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}";
        failWithKey("dtype2.safetensors", notString, 4, "w", "dtype");
    }

    @Test
    void dtypeWithoutNd4jTypeFailsOnGetButBytesWork() throws IOException {
        String h = "{" + entry("fp8", "F8_E4M3", "[4]", 0, 4) + "}";
        Path p = file("fp8.safetensors", IoTestSupport.craft(h, 4));
        try (SafeTensorsFile f = SafeTensorsFile.open(p)) {
            SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> f.get("fp8"));
            assertTrue(e.getMessage().contains(p.toString()) && e.getMessage().contains("'fp8'")
                    && e.getMessage().contains("F8_E4M3"), e.getMessage());
            ByteBuffer b = f.getBytes("fp8");
            assertEquals(4, b.remaining());
            assertEquals(3, b.get(3));
        }
    }
}
