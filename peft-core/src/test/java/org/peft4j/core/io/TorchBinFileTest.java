package org.peft4j.core.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link TorchBinFile} on files written by Debian's python3-torch 1.13
 * ({@code scripts/make_torch_bin_fixtures.py}, output in {@code src/test/resources/io/torch/}),
 * and on hand-crafted archives that must be refused.
 */
class TorchBinFileTest {
    @TempDir
    Path tmp;

    private Path fixture(String name) throws IOException {
        Path p = tmp.resolve(name);
        Files.write(p, IoTestSupport.resource("/io/torch/" + name));
        return p;
    }

    @Test
    void readsEveryTensorOfTheTorchFixtureExactly() throws IOException {
        JsonNode expected = new ObjectMapper().readTree(IoTestSupport.resource("/io/torch/state_dict.json"));
        try (TorchBinFile f = TorchBinFile.open(fixture("state_dict.bin"))) {
            assertEquals(expected.size(), f.size());
            // state dict order is kept: the module's own tensors first
            assertEquals("dense.weight", f.keys().get(0));
            for (Iterator<Map.Entry<String, JsonNode>> it = expected.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                String key = e.getKey();
                JsonNode exp = e.getValue();
                TensorInfo info = f.info(key);
                assertEquals(exp.get("dtype").asText(), info.dtypeName(), key);
                long[] shape = new long[exp.get("shape").size()];
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = exp.get("shape").get(i).asLong();
                }
                assertArrayEquals(shape, info.shape(), key);
                INDArray a = f.get(key);
                assertArrayEquals(shape, a.shape(), key);
                if (exp.has("f32_bits")) {
                    assertEquals(DataType.FLOAT, a.dataType(), key);
                    int[] bits = IoTestSupport.floatBits(a);
                    assertEquals(exp.get("f32_bits").size(), bits.length, key);
                    for (int i = 0; i < bits.length; i++) {
                        assertEquals(exp.get("f32_bits").get(i).asLong(), bits[i] & 0xffffffffL, key + "[" + i + "]");
                    }
                } else if (exp.has("f64")) {
                    double[] v = a.reshape(-1).toDoubleVector();
                    for (int i = 0; i < v.length; i++) {
                        assertEquals(exp.get("f64").get(i).asDouble(), v[i], 0.0, key + "[" + i + "]");
                    }
                } else {
                    long[] v = a.length() == 0 ? new long[0] : a.castTo(DataType.INT64).reshape(-1).toLongVector();
                    assertEquals(exp.get("ints").size(), v.length, key);
                    for (int i = 0; i < v.length; i++) {
                        assertEquals(exp.get("ints").get(i).asLong(), v[i], key + "[" + i + "]");
                    }
                }
            }
        }
    }

    @Test
    void keepsHalfFloatsUnwidenedOnRequest() throws IOException {
        try (TorchBinFile f = TorchBinFile.open(fixture("state_dict.bin"))) {
            assertEquals(DataType.HALF, f.get("f16", false).dataType());
            assertEquals(DataType.BFLOAT16, f.get("bf16", false).dataType());
            assertEquals(8, f.getBytes("f16").remaining());
        }
    }

    @Test
    void honoursStridesAndStorageOffsetsOfViews() throws IOException {
        try (TorchBinFile f = TorchBinFile.open(fixture("state_dict.bin"))) {
            // base = arange(24).reshape(4, 6); col_slice = base[:, 2:5]; row1 = base[1]; transposed = arange(6).reshape(2,3).t()
            assertArrayEquals(new long[]{6, 1}, f.stride("shared.col_slice"));
            assertEquals(2, f.storageOffset("shared.col_slice"));
            assertArrayEquals(new float[]{2, 3, 4, 8, 9, 10, 14, 15, 16, 20, 21, 22},
                    f.get("shared.col_slice").reshape(-1).toFloatVector(), 0f);
            assertEquals(6, f.storageOffset("shared.row1"));
            assertArrayEquals(new float[]{6, 7, 8, 9, 10, 11}, f.get("shared.row1").toFloatVector(), 0f);
            assertArrayEquals(new long[]{1, 3}, f.stride("transposed"));
            assertArrayEquals(new float[]{0, 3, 1, 4, 2, 5}, f.get("transposed").reshape(-1).toFloatVector(), 0f);
        }
    }

    @Test
    void refusesAPickleThatCallsOsSystemWithoutRunningIt() throws IOException {
        Path marker = Path.of("/tmp/peft4j-pwned");
        Files.deleteIfExists(marker);
        Path evil = fixture("evil_os_system.bin");
        TorchBinException e = assertThrows(TorchBinException.class, () -> TorchBinFile.open(evil));
        assertTrue(e.getMessage().contains("global 'posix.system'"), e.getMessage());
        assertTrue(e.getMessage().startsWith(evil.toString()), e.getMessage());
        assertFalse(Files.exists(marker));
        Path evalFile = fixture("evil_eval.bin");
        e = assertThrows(TorchBinException.class, () -> TorchBinFile.open(evalFile));
        assertTrue(e.getMessage().contains("global '__builtin__.eval'"), e.getMessage());
        assertFalse(Files.exists(marker));
    }

    // ---- hand-made archives ------------------------------------------------------------------

    /** A pickle of {@code {key: _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', numel), offset, size, stride, False, ())}}. */
    static byte[] tensorPickle(String key, String storageType, long numel, long offset, long[] size, long[] stride) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.write(0x80);
        b.write(2);
        b.write('}');
        str(b, key);
        ascii(b, "ctorch._utils\n_rebuild_tensor_v2\n");
        b.write('(');
        b.write('(');
        str(b, "storage");
        ascii(b, "ctorch\n" + storageType + "\n");
        str(b, "0");
        str(b, "cpu");
        long8(b, numel);
        b.write('t');
        b.write('Q');
        long8(b, offset);
        b.write('(');
        for (long s : size) {
            long8(b, s);
        }
        b.write('t');
        b.write('(');
        for (long s : stride) {
            long8(b, s);
        }
        b.write('t');
        b.write(0x89);
        b.write(')');
        b.write('t');
        b.write('R');
        b.write('s');
        b.write('.');
        return b.toByteArray();
    }

    private static void str(ByteArrayOutputStream b, String s) {
        byte[] u = s.getBytes(StandardCharsets.UTF_8);
        b.write(0x8c);
        b.write(u.length);
        b.writeBytes(u);
    }

    private static void ascii(ByteArrayOutputStream b, String s) {
        b.writeBytes(s.getBytes(StandardCharsets.US_ASCII));
    }

    private static void long8(ByteArrayOutputStream b, long v) {
        b.write(0x8a);
        b.write(8);
        for (int i = 0; i < 8; i++) {
            b.write((int) (v >>> (8 * i)) & 0xff);
        }
    }

    /** A zip of STORED entries, as torch writes them. */
    static byte[] zip(Map<String, byte[]> entries) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (ZipOutputStream z = new ZipOutputStream(out)) {
            for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                ZipEntry ze = new ZipEntry(e.getKey());
                ze.setMethod(ZipEntry.STORED);
                ze.setSize(e.getValue().length);
                ze.setCompressedSize(e.getValue().length);
                CRC32 crc = new CRC32();
                crc.update(e.getValue());
                ze.setCrc(crc.getValue());
                z.putNextEntry(ze);
                z.write(e.getValue());
                z.closeEntry();
            }
        }
        return out.toByteArray();
    }

    private Path archive(byte[] pickle, byte[] storage) throws IOException {
        Map<String, byte[]> m = new LinkedHashMap<>();
        m.put("archive/data.pkl", pickle);
        if (storage != null) {
            m.put("archive/data/0", storage);
        }
        m.put("archive/version", "3\n".getBytes(StandardCharsets.US_ASCII));
        Path p = tmp.resolve("crafted.bin");
        Files.write(p, zip(m));
        return p;
    }

    @Test
    void readsAHandMadeArchiveLikeTorchs() throws IOException {
        byte[] storage = new byte[4 * 6];
        for (int i = 0; i < 6; i++) {
            java.nio.ByteBuffer.wrap(storage).order(java.nio.ByteOrder.LITTLE_ENDIAN).putFloat(4 * i, i * 0.5f);
        }
        Path p = archive(tensorPickle("w", "FloatStorage", 6, 1, new long[]{2, 2}, new long[]{1, 2}), storage);
        try (TorchBinFile f = TorchBinFile.open(p)) {
            // elements at offset 1 + i*1 + j*2: [[1, 3], [2, 4]] × 0.5
            assertArrayEquals(new float[]{0.5f, 1.5f, 1.0f, 2.0f}, f.get("w").reshape(-1).toFloatVector(), 0f);
        }
    }

    @Test
    void refusesSizesThatDoNotFitTheirStorageWithTheTrueNumbers() throws IOException {
        byte[] storage = new byte[16];
        Path huge = archive(tensorPickle("w", "FloatStorage", 1_000_000_000_000L, 0, new long[]{1_000_000, 1_000_000},
                new long[]{1_000_000, 1}), storage);
        TorchBinException e = assertThrows(TorchBinException.class, () -> TorchBinFile.open(huge));
        assertTrue(e.getMessage().contains("1000000000000 F32 elements (4000000000000 bytes)")
                && e.getMessage().contains("holds 16 bytes"), e.getMessage());

        Path overflow = archive(tensorPickle("w", "FloatStorage", 4, 0, new long[]{1L << 40, 1L << 40},
                new long[]{1L << 40, 1}), storage);
        e = assertThrows(TorchBinException.class, () -> TorchBinFile.open(overflow));
        assertTrue(e.getMessage().contains("tensor 'w'") && e.getMessage().contains("overflows"), e.getMessage());

        Path beyond = archive(tensorPickle("w", "FloatStorage", 4, 2, new long[]{3}, new long[]{1}), storage);
        e = assertThrows(TorchBinException.class, () -> TorchBinFile.open(beyond));
        assertTrue(e.getMessage().contains("reach element 4 of storage '0', which has 4 elements"), e.getMessage());

        Path storageOverflow = archive(tensorPickle("w", "LongStorage", Long.MAX_VALUE / 2, 0, new long[]{1},
                new long[]{1}), storage);
        e = assertThrows(TorchBinException.class, () -> TorchBinFile.open(storageOverflow));
        assertTrue(e.getMessage().contains(Long.toString(Long.MAX_VALUE / 2)) && e.getMessage().contains("2^63"),
                e.getMessage());

        Path missing = archive(tensorPickle("w", "FloatStorage", 4, 0, new long[]{4}, new long[]{1}), null);
        e = assertThrows(TorchBinException.class, () -> TorchBinFile.open(missing));
        assertTrue(e.getMessage().contains("archive/data/0 is missing"), e.getMessage());
    }

    @Test
    void refusesForbiddenOpcodesAndGlobalsByName() throws IOException {
        // INST builds an arbitrary object: (i os\nsystem\n
        byte[] inst = "\u0080\u0002(X\u0002\u0000\u0000\u0000lsios\nsystem\n.".getBytes(StandardCharsets.ISO_8859_1);
        Path p = archive(inst, null);
        TorchBinException e = assertThrows(TorchBinException.class, () -> TorchBinFile.open(p));
        assertTrue(e.getMessage().contains("opcode INST (0x69)"), e.getMessage());

        byte[] subprocess = "\u0080\u0002csubprocess\nPopen\n.".getBytes(StandardCharsets.ISO_8859_1);
        Path q = archive(subprocess, null);
        e = assertThrows(TorchBinException.class, () -> TorchBinFile.open(q));
        assertTrue(e.getMessage().contains("global 'subprocess.Popen'"), e.getMessage());

        // a string that claims 4 GB
        byte[] bigString = "\u0080\u0002X\u00ff\u00ff\u00ff\u00ff".getBytes(StandardCharsets.ISO_8859_1);
        Path r = archive(bigString, null);
        e = assertThrows(TorchBinException.class, () -> TorchBinFile.open(r));
        assertTrue(e.getMessage().contains("claims 4294967295 bytes"), e.getMessage());

        // a list that contains itself, used as a dict key, must not hash forever
        byte[] selfList = "\u0080\u0002}]q\u0000h\u0000aK\u0001s.".getBytes(StandardCharsets.ISO_8859_1);
        Path s = archive(selfList, null);
        e = assertThrows(TorchBinException.class, () -> TorchBinFile.open(s));
        assertTrue(e.getMessage().contains("dict key of type a list of 1"), e.getMessage());
    }

    @Test
    void namesLegacyAndNonZipFiles() throws IOException {
        Path legacy = tmp.resolve("legacy.bin");
        Files.write(legacy, new byte[]{(byte) 0x80, 2, (byte) 0x8a, 10});
        TorchBinException e = assertThrows(TorchBinException.class, () -> TorchBinFile.open(legacy));
        assertTrue(e.getMessage().contains("legacy torch.save format"), e.getMessage());
        Path text = tmp.resolve("text.bin");
        Files.writeString(text, "hello");
        e = assertThrows(TorchBinException.class, () -> TorchBinFile.open(text));
        assertTrue(e.getMessage().contains("not a PyTorch checkpoint"), e.getMessage());
        byte[] whole = IoTestSupport.resource("/io/torch/state_dict.bin");
        Path cut = tmp.resolve("cut.bin");
        Files.write(cut, java.util.Arrays.copyOf(whole, whole.length / 2));
        assertThrows(TorchBinException.class, () -> TorchBinFile.open(cut));
    }
}
