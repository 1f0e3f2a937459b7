package org.peft4j.core.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Reads and writes the {@code safetensors} format (huggingface/safetensors).
 *
 * <p>Reading: {@link #load(Path)} copies every tensor into ND4J memory (the file is closed
 * afterwards); for lazy, per-tensor access use {@link SafeTensorsFile#open(Path)}.
 *
 * <p>Writing: {@link #write(Path, Map, Map)} produces exactly the bytes the reference writer
 * ({@code serialize_to_file} in {@code safetensors/src/tensor.rs}, which the Python
 * {@code save_file} calls) would: tensors laid out by dtype in descending
 * {@link SafeTensorsDtype} order, then by key (UTF-8 byte order); a compact JSON header with
 * {@code __metadata__} first and then the tensors in data order; the header padded with spaces to
 * a multiple of 8 bytes so every tensor's data is 8-byte aligned. Only the order of the
 * {@code __metadata__} entries may differ (the reference uses a hash map; we sort them).
 * The file is written to a temporary sibling and renamed into place ({@link AtomicFiles}).
 *
 * <p>ND4J types map to dtypes as FLOAT→F32, HALF→F16, BFLOAT16→BF16, DOUBLE→F64, INT8→I8,
 * UINT8→U8, INT16→I16, UINT16→U16, INT32→I32, UINT32→U32, INT64→I64, UINT64→U64, BOOL→BOOL.
 * Views (transposes, permutations, column slices) are written in logical row-major order.
 */
public final class SafeTensors {
    private static final JsonFactory JSON = new JsonFactory();

    /** Key order of the reference writer: dtype descending, then key by UTF-8 bytes. */
    static final Comparator<Planned> WRITE_ORDER = (a, b) -> {
        int c = b.dtype.compareTo(a.dtype);
        return c != 0 ? c : Arrays.compareUnsigned(a.utf8Name, b.utf8Name);
    };

    private SafeTensors() {
    }

    /**
     * All tensors of {@code file}, copied into ND4J memory, in data order; F16/BF16 widened to FLOAT.
     *
     * @throws SafeTensorsException if the file is malformed or holds a dtype without ND4J type
     */
    public static Map<String, INDArray> load(Path file) throws IOException {
        return load(file, true);
    }

    /** As {@link #load(Path)}; with {@code widenToFloat} false F16/BF16 stay HALF/BFLOAT16. */
    public static Map<String, INDArray> load(Path file, boolean widenToFloat) throws IOException {
        try (SafeTensorsFile f = SafeTensorsFile.open(file)) {
            Map<String, INDArray> out = new LinkedHashMap<>();
            for (String key : f.keys()) {
                out.put(key, f.get(key, widenToFloat));
            }
            return out;
        }
    }

    /** The {@code __metadata__} of {@code file} (empty if none), reading only the header. */
    public static Map<String, String> readMetadata(Path file) throws IOException {
        try (SafeTensorsFile f = SafeTensorsFile.open(file)) {
            return f.metadata();
        }
    }

    /** Writes {@code tensors} without {@code __metadata__}. See {@link #write(Path, Map, Map)}. */
    public static void write(Path file, Map<String, INDArray> tensors) throws IOException {
        write(file, tensors, null);
    }

    /**
     * Writes {@code tensors} to {@code file} atomically (temporary sibling, then rename).
     *
     * @param metadata the {@code __metadata__} map; null writes none (as the reference does for
     *                 {@code metadata=None}); an empty map writes {@code "__metadata__":{}}
     * @throws IllegalArgumentException for a null key/array, the reserved key {@code __metadata__},
     *                                  or an ND4J type with no safetensors dtype (names the key)
     */
    public static void write(Path file, Map<String, INDArray> tensors, Map<String, String> metadata) throws IOException {
        Plan plan = plan(file, tensors, metadata);
        AtomicFiles.writeChannel(file, ch -> {
            ByteBuffer head = plan.prefix();
            while (head.hasRemaining()) {
                ch.write(head);
            }
            for (Planned p : plan.order) {
                writeData(p, buf -> {
                    while (buf.hasRemaining()) {
                        ch.write(buf);
                    }
                });
            }
        });
    }

    /**
     * The bytes {@link #write(Path, Map, Map)} would write, in memory (for small tensors and
     * for tests; limited to 2 GB).
     */
    public static byte[] serialize(Map<String, INDArray> tensors, Map<String, String> metadata) {
        Plan plan = plan(null, tensors, metadata);
        long total = 8L + plan.header.length + plan.dataLength;
        if (total > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("serialized size " + total + " bytes exceeds a byte array; write to a file");
        }
        ByteBuffer out = ByteBuffer.allocate((int) total);
        out.put(plan.prefix());
        try {
            for (Planned p : plan.order) {
                writeData(p, out::put);
            }
        } catch (IOException e) {
            throw new IllegalStateException("unreachable: in-memory write failed", e);
        }
        return out.array();
    }

    /** One tensor of a planned file. */
    static final class Planned {
        final String name;
        final byte[] utf8Name;
        final INDArray array;
        final SafeTensorsDtype dtype;
        final long[] shape;
        final long nbytes;
        long begin;

        Planned(String name, INDArray array, SafeTensorsDtype dtype) {
            this.name = name;
            this.utf8Name = name.getBytes(StandardCharsets.UTF_8);
            this.array = array;
            this.dtype = dtype;
            this.shape = array.shape();
            this.nbytes = array.length() * dtype.size();
        }
    }

    /** The header and the tensors in data order. */
    record Plan(byte[] header, List<Planned> order, long dataLength) {
        /** The 8-byte little-endian header length followed by the header. */
        ByteBuffer prefix() {
            ByteBuffer b = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
            b.putLong(header.length).put(header).flip();
            return b;
        }
    }

    static Plan plan(Path file, Map<String, INDArray> tensors, Map<String, String> metadata) {
        if (tensors == null) {
            throw new IllegalArgumentException((file != null ? file + ": " : "") + "tensors map is null");
        }
        List<Planned> order = new ArrayList<>(tensors.size());
        for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
            String key = e.getKey();
            if (key == null) {
                throw new IllegalArgumentException(where(file) + "null tensor key");
            }
            if (SafeTensorsFile.METADATA_KEY.equals(key)) {
                throw new IllegalArgumentException(where(file) + "'" + key + "' is reserved for metadata and cannot name a tensor");
            }
            INDArray a = e.getValue();
            if (a == null) {
                throw new IllegalArgumentException(where(file) + "tensor '" + key + "' is null");
            }
            SafeTensorsDtype dt;
            try {
                dt = SafeTensorsDtype.fromNd4j(a.dataType());
            } catch (IllegalArgumentException ex) {
                throw new IllegalArgumentException(where(file) + "tensor '" + key + "': " + ex.getMessage(), ex);
            }
            order.add(new Planned(key, a, dt));
        }
        order.sort(WRITE_ORDER);
        long offset = 0;
        for (Planned p : order) {
            p.begin = offset;
            offset += p.nbytes;
        }
        byte[] header = headerJson(file, order, metadata);
        return new Plan(header, order, offset);
    }

    private static String where(Path file) {
        return file == null ? "" : file + ": ";
    }

    private static byte[] headerJson(Path file, List<Planned> order, Map<String, String> metadata) {
        ByteArrayOutputStream bos = new ByteArrayOutputStream(128 + 96 * order.size());
        try (JsonGenerator g = JSON.createGenerator(bos)) {
            g.writeStartObject();
            if (metadata != null) {
                g.writeFieldName(SafeTensorsFile.METADATA_KEY);
                g.writeStartObject();
                for (Map.Entry<String, String> m : new TreeMap<>(metadata).entrySet()) {
                    if (m.getValue() == null) {
                        throw new IllegalArgumentException(where(file) + "metadata value of '" + m.getKey() + "' is null");
                    }
                    g.writeStringField(m.getKey(), m.getValue());
                }
                g.writeEndObject();
            }
            for (Planned p : order) {
                g.writeFieldName(p.name);
                g.writeStartObject();
                g.writeStringField("dtype", p.dtype.name());
                g.writeFieldName("shape");
                g.writeStartArray();
                for (long d : p.shape) {
                    g.writeNumber(d);
                }
                g.writeEndArray();
                g.writeFieldName("data_offsets");
                g.writeStartArray();
                g.writeNumber(p.begin);
                g.writeNumber(p.begin + p.nbytes);
                g.writeEndArray();
                g.writeEndObject();
            }
            g.writeEndObject();
        } catch (IOException e) {
            throw new IllegalStateException("unreachable: in-memory JSON failed", e);
        } catch (NullPointerException e) {
            // TreeMap rejects null metadata keys.
            throw new IllegalArgumentException(where(file) + "metadata has a null key", e);
        }
        int len = bos.size();
        int pad = (8 - len % 8) % 8;
        for (int i = 0; i < pad; i++) {
            bos.write(' ');
        }
        return bos.toByteArray();
    }

    /** Hands the tensor's row-major bytes to {@code sink} in windows of at most 512 MB. */
    private static void writeData(Planned p, IOConsumer<ByteBuffer> sink) throws IOException {
        if (p.nbytes == 0) {
            return;
        }
        // A view (transpose, column slice) is copied once into row-major order; a contiguous
        // array is written straight from its native memory.
        INDArray c = NativeBuffers.isContiguousRowMajor(p.array) ? p.array : p.array.dup('c');
        int window = SafeTensorsFile.mapWindowBytes;
        for (long off = 0; off < p.nbytes; off += window) {
            int len = (int) Math.min(window, p.nbytes - off);
            ByteBuffer b = NativeBuffers.bytes(c, off, len);
            b.order(ByteOrder.LITTLE_ENDIAN);
            sink.accept(b);
        }
    }
}
