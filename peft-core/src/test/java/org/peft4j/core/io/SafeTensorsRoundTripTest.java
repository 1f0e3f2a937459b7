package org.peft4j.core.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration;
import org.nd4j.linalg.api.memory.enums.AllocationPolicy;
import org.nd4j.linalg.api.memory.enums.LearningPolicy;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafeTensorsRoundTripTest {
    @TempDir
    Path tmp;

    /** A [3, 5] array of {@code type} with seeded values that exercise the type's range. */
    private static INDArray sample(DataType type, long seed) {
        Random r = new Random(seed);
        double[] v = new double[15];
        for (int i = 0; i < v.length; i++) {
            v[i] = switch (type) {
                case BOOL -> r.nextBoolean() ? 1 : 0;
                case UBYTE -> r.nextInt(256);
                case BYTE -> r.nextInt(256) - 128;
                case SHORT -> r.nextInt(65536) - 32768;
                case UINT16 -> r.nextInt(65536);
                case INT, UINT32 -> r.nextInt(1 << 30);
                case LONG, UINT64 -> r.nextInt(1 << 30) * 1024.0;
                default -> r.nextGaussian() * 100;
            };
        }
        return Nd4j.createFromArray(v).reshape(3, 5).castTo(type);
    }

    private static final List<DataType> ALL = List.of(DataType.FLOAT, DataType.HALF, DataType.BFLOAT16,
            DataType.DOUBLE, DataType.INT8, DataType.UINT8, DataType.INT16, DataType.UINT16, DataType.INT32,
            DataType.UINT32, DataType.INT64, DataType.UINT64, DataType.BOOL);

    @Test
    void everyDtypeRoundTripsBitExactly() throws IOException {
        Map<String, INDArray> in = new LinkedHashMap<>();
        long seed = 1;
        for (DataType t : ALL) {
            in.put("t." + t.name().toLowerCase(), sample(t, seed++));
        }
        Path f = tmp.resolve("all.safetensors");
        SafeTensors.write(f, in, Map.of("k", "v"));
        try (SafeTensorsFile sf = SafeTensorsFile.open(f)) {
            assertEquals(Map.of("k", "v"), sf.metadata());
            for (Map.Entry<String, INDArray> e : in.entrySet()) {
                INDArray orig = e.getValue();
                assertEquals(SafeTensorsDtype.fromNd4j(orig.dataType()), sf.info(e.getKey()).dtype(), e.getKey());
                INDArray back = sf.get(e.getKey(), false);
                assertEquals(orig.dataType(), back.dataType(), e.getKey());
                assertArrayEquals(orig.shape(), back.shape(), e.getKey());
                assertArrayEquals(IoTestSupport.rawBytes(orig), IoTestSupport.rawBytes(back), e.getKey());
            }
            // Widening: the same values as ND4J's own cast (exact for HALF and BFLOAT16).
            for (String k : List.of("t.half", "t.bfloat16")) {
                INDArray widened = sf.get(k);
                assertEquals(DataType.FLOAT, widened.dataType());
                assertArrayEquals(IoTestSupport.floatBits(in.get(k).castTo(DataType.FLOAT)), IoTestSupport.floatBits(widened), k);
            }
            // Non-half types are unaffected by widenToFloat.
            assertEquals(DataType.INT8, sf.get("t.byte").dataType());
        }
    }

    @Test
    void writerOrdersLikeTheReferenceAndAligns() throws IOException {
        Map<String, INDArray> in = new LinkedHashMap<>();
        in.put("b", Nd4j.createFromArray(1f, 2f, 3f));                      // F32
        in.put("a", Nd4j.createFromArray(4f));                              // F32, rank 1
        in.put("z", Nd4j.createFromArray(1f, 2f).castTo(DataType.HALF));     // F16
        in.put("c", Nd4j.createFromArray(7L, 8L));                          // I64
        in.put("y", Nd4j.createFromArray((byte) 1, (byte) 2, (byte) 3));    // I8
        in.put("x", Nd4j.createFromArray(1.0, 2.0));                        // F64
        Path f = tmp.resolve("order.safetensors");
        SafeTensors.write(f, in, null);
        try (SafeTensorsFile sf = SafeTensorsFile.open(f)) {
            // Descending reference dtype order (I64 > F64 > F32 > F16 > I8), then name.
            assertEquals(List.of("c", "x", "a", "b", "z", "y"), sf.keys());
            assertEquals(0, sf.headerLength() % 8);
            assertTrue(sf.metadata().isEmpty());
            assertEquals(new TensorInfo("c", SafeTensorsDtype.I64, new long[]{2}, 0, 16), sf.info("c"));
        }
        byte[] bytes = Files.readAllBytes(f);
        int headerLen = (int) ByteBuffer.wrap(bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong(0);
        String header = new String(bytes, 8, headerLen, java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(header.endsWith("}") || header.endsWith(" "), header);
        assertTrue(header.startsWith("{\"c\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}"), header);
    }

    @Test
    void metadataNullOmitsEmptyWritesEmptyObject() {
        byte[] none = SafeTensors.serialize(Map.of(), null);
        assertArrayEquals(new byte[]{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '}, none,
                "the reference's test_empty bytes");
        byte[] withFramework = SafeTensors.serialize(Map.of(), Map.of("framework", "pt"));
        String h = new String(withFramework, 8, withFramework.length - 8, java.nio.charset.StandardCharsets.UTF_8);
        assertEquals("{\"__metadata__\":{\"framework\":\"pt\"}}     ", h, "the reference's test_empty bytes");
        byte[] empty = SafeTensors.serialize(Map.of(), Map.of());
        assertTrue(new String(empty, java.nio.charset.StandardCharsets.UTF_8).contains("\"__metadata__\":{}"));
    }

    @Test
    void referenceSerializationTestVector() {
        // test_serialization in safetensors/src/tensor.rs: "attn.0" F32 [1,2,3] = 0..5.
        INDArray a = Nd4j.createFromArray(0f, 1f, 2f, 3f, 4f, 5f).reshape(1, 2, 3);
        byte[] out = SafeTensors.serialize(Map.of("attn.0", a), null);
        byte[] expected = {64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
                116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
                58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
                101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, (byte) 128, 63,
                0, 0, 0, 64, 0, 0, 64, 64, 0, 0, (byte) 128, 64, 0, 0, (byte) 160, 64};
        assertArrayEquals(expected, out);
    }

    @Test
    void viewsAreWrittenInLogicalRowMajorOrder() throws IOException {
        INDArray base = Nd4j.arange(24).castTo(DataType.FLOAT).reshape(2, 3, 4);
        INDArray m = Nd4j.arange(20).castTo(DataType.FLOAT).reshape(4, 5);
        Map<String, INDArray> in = new LinkedHashMap<>();
        in.put("transpose", m.transpose());                                                  // [5, 4], f-order view
        in.put("permute", base.permute(2, 0, 1));                                            // [4, 2, 3]
        in.put("columns", m.get(NDArrayIndex.all(), NDArrayIndex.interval(1, 3)));          // [4, 2], strided
        in.put("rows", m.get(NDArrayIndex.interval(1, 3), NDArrayIndex.all()));             // [2, 5], offset view
        in.put("forder", Nd4j.create(new float[]{1, 2, 3, 4, 5, 6}, new long[]{2, 3}, 'f')); // f-order array
        in.put("halfT", m.castTo(DataType.HALF).transpose());
        Path f = tmp.resolve("views.safetensors");
        SafeTensors.write(f, in, null);
        Map<String, INDArray> back = SafeTensors.load(f, false);
        for (Map.Entry<String, INDArray> e : in.entrySet()) {
            INDArray want = e.getValue().dup('c');
            INDArray got = back.get(e.getKey());
            assertArrayEquals(want.shape(), got.shape(), e.getKey());
            assertEquals(want, got, e.getKey());
        }
        // Concretely: the transpose's first row is column 0 of m.
        assertArrayEquals(new float[]{0, 5, 10, 15}, back.get("transpose").getRow(0).toFloatVector());
        // The f-order buffer is 1..6 column by column; on disk row 0 must be the logical [1, 3, 5].
        assertArrayEquals(new float[]{1, 3, 5}, back.get("forder").getRow(0).toFloatVector());
    }

    @Test
    void scalarAndEmptyTensors() throws IOException {
        Map<String, INDArray> in = new LinkedHashMap<>();
        in.put("scalar", Nd4j.scalar(2.25f));
        in.put("empty", Nd4j.create(DataType.FLOAT, 2, 0));
        in.put("empty_i64", Nd4j.create(DataType.INT64, 0));
        in.put("after", Nd4j.createFromArray(9f));
        Path f = tmp.resolve("edge.safetensors");
        SafeTensors.write(f, in, null);
        try (SafeTensorsFile sf = SafeTensorsFile.open(f)) {
            assertEquals(0, sf.info("scalar").rank());
            assertEquals(4, sf.info("scalar").byteSize());
            assertEquals(0, sf.info("empty").byteSize());
            INDArray s = sf.get("scalar");
            assertEquals(0, s.rank());
            assertEquals(2.25f, s.getFloat(0), 0f);
            INDArray e = sf.get("empty");
            assertTrue(e.isEmpty());
            assertArrayEquals(new long[]{2, 0}, e.shape());
            assertArrayEquals(new long[]{0}, sf.get("empty_i64").shape());
            assertEquals(DataType.INT64, sf.get("empty_i64").dataType());
            assertEquals(0, sf.getBytes("empty").remaining());
            assertEquals(9f, sf.get("after").getFloat(0), 0f);
        }
    }

    @Test
    void tensorsLargerThanOneMapWindowAreCopiedInPieces() throws IOException {
        int saved = SafeTensorsFile.mapWindowBytes;
        try {
            Random r = new Random(42);
            float[] v = new float[1001];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) r.nextGaussian();
            }
            Map<String, INDArray> in = new LinkedHashMap<>();
            in.put("f32", Nd4j.createFromArray(v).reshape(7, 143));
            in.put("f16", Nd4j.createFromArray(v).castTo(DataType.HALF));
            in.put("bf16", Nd4j.createFromArray(v).castTo(DataType.BFLOAT16));
            SafeTensorsFile.mapWindowBytes = 64; // many windows, also for the writer
            Path f = tmp.resolve("windows.safetensors");
            SafeTensors.write(f, in, null);
            SafeTensorsFile.mapWindowBytes = saved;
            byte[] whole = Files.readAllBytes(f);
            SafeTensors.write(tmp.resolve("one-window.safetensors"), in, null);
            assertArrayEquals(Files.readAllBytes(tmp.resolve("one-window.safetensors")), whole);

            SafeTensorsFile.mapWindowBytes = 24;
            try (SafeTensorsFile sf = SafeTensorsFile.open(f)) {
                assertArrayEquals(IoTestSupport.rawBytes(in.get("f32")), IoTestSupport.rawBytes(sf.get("f32")));
                for (String k : List.of("f16", "bf16")) {
                    assertArrayEquals(IoTestSupport.floatBits(in.get(k).castTo(DataType.FLOAT)),
                            IoTestSupport.floatBits(sf.get(k)), k);
                    assertArrayEquals(IoTestSupport.rawBytes(in.get(k)), IoTestSupport.rawBytes(sf.get(k, false)), k);
                }
            }
        } finally {
            SafeTensorsFile.mapWindowBytes = saved;
        }
    }

    @Test
    void overwriteIsAtomicAndLeavesNoTemporaryFiles() throws IOException {
        Path f = tmp.resolve("w.safetensors");
        SafeTensors.write(f, Map.of("a", Nd4j.createFromArray(1f, 2f)), null);
        byte[] before = Files.readAllBytes(f);
        Map<String, INDArray> bad = new LinkedHashMap<>();
        bad.put("ok", Nd4j.createFromArray(3f));
        bad.put(SafeTensorsFile.METADATA_KEY, Nd4j.createFromArray(4f));
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, () -> SafeTensors.write(f, bad, null));
        assertTrue(ex.getMessage().contains("__metadata__"), ex.getMessage());
        assertArrayEquals(before, Files.readAllBytes(f));
        SafeTensors.write(f, Map.of("b", Nd4j.createFromArray(5f)), null);
        assertEquals(List.of("b"), SafeTensors.load(f).keySet().stream().toList());
        assertEquals(List.of("w.safetensors"), IoTestSupport.listNames(tmp));
    }

    @Test
    void writerRejectsNullsWithTheKey() {
        Path f = tmp.resolve("n.safetensors");
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.put("weight", null);
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, () -> SafeTensors.write(f, m, null));
        assertTrue(ex.getMessage().contains("weight") && ex.getMessage().contains(f.toString()), ex.getMessage());
        assertFalse(Files.exists(f));
    }

    @Test
    void tensorsReadInsideAWorkspaceAreNotAttachedToIt() throws IOException {
        Path f = tmp.resolve("ws.safetensors");
        SafeTensors.write(f, Map.of("w", Nd4j.createFromArray(1f, 2f, 3f)), null);
        WorkspaceConfiguration conf = WorkspaceConfiguration.builder().initialSize(1 << 20)
                .policyAllocation(AllocationPolicy.STRICT).policyLearning(LearningPolicy.NONE).build();
        INDArray w;
        try (SafeTensorsFile sf = SafeTensorsFile.open(f);
             MemoryWorkspace ws = Nd4j.getWorkspaceManager().getAndActivateWorkspace(conf, "IO_TEST_WS")) {
            w = sf.get("w");
            assertFalse(w.isAttached(), "loaded weights must outlive the caller's workspace");
        }
        assertArrayEquals(new float[]{1, 2, 3}, w.toFloatVector());
    }

    @Test
    void accessorsAndClosedState() throws IOException {
        Path f = tmp.resolve("acc.safetensors");
        SafeTensors.write(f, Map.of("w", Nd4j.createFromArray(1f, -2f)), Map.of("format", "pt"));
        SafeTensorsFile sf = SafeTensorsFile.open(f);
        assertEquals(Map.of("format", "pt"), SafeTensors.readMetadata(f));
        assertTrue(sf.contains("w"));
        assertEquals(1, sf.size());
        assertEquals(8, sf.dataLength());
        ByteBuffer b = sf.getBytes("w");
        assertEquals(-2f, b.getFloat(4), 0f);
        SafeTensorsException missing = assertThrows(SafeTensorsException.class, () -> sf.get("nope"));
        assertTrue(missing.getMessage().contains(f.toString()) && missing.getMessage().contains("'nope'"));
        assertEquals("nope", missing.key());
        assertEquals(f, missing.file());
        sf.close();
        assertThrows(IllegalStateException.class, () -> sf.get("w"));
        assertEquals(-2f, b.getFloat(4), 0f, "mapped bytes stay readable after close");
        sf.close(); // idempotent
    }
}
