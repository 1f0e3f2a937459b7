package org.peft4j.core.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An open {@code .safetensors} file: the header is read and validated on {@link #open}, and each
 * tensor's bytes are memory-mapped only when it is asked for, so a large checkpoint can be
 * inspected or converted one tensor at a time.
 *
 * <p>File layout: 8 bytes little-endian u64 {@code N}; {@code N} bytes of UTF-8 JSON
 * {@code {key: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}};
 * then the data section, where {@code [begin, end)} is relative to the data section's start and
 * each tensor is row-major, little-endian.
 *
 * <p>Validation follows the reference reader ({@code SafeTensors::read_metadata} and
 * {@code Metadata::validate} in huggingface/safetensors): a header length of at most 100,000,000
 * bytes that fits in the file; valid UTF-8 JSON; entries sorted by offsets must tile the data
 * section exactly — the first begins at 0, each begins where the previous ended (no gap, no
 * overlap), and the last ends at the end of the file; and each entry's byte length equals
 * product(shape) × dtype size. The order of entries in the header is free. In addition to the
 * reference we reject duplicate JSON keys, which the reference silently resolves to the last one.
 * Every violation is a {@link SafeTensorsException} naming the file and, where one is
 * concerned, the key.
 *
 * <p>Reading a tensor costs one copy: from the mapped file straight into the ND4J buffer
 * (widening F16/BF16 on the fly). {@link #getBytes} costs none. Instances are safe for concurrent
 * reads. Tensors returned by {@link #get} are independent of the file; buffers returned by
 * {@link #getBytes} stay readable after {@link #close()} (the JVM unmaps them when they are
 * garbage-collected).
 */
public final class SafeTensorsFile implements WeightFile {
    /** The reference implementation's limit on the header length (MAX_HEADER_SIZE). */
    public static final long MAX_HEADER_SIZE = 100_000_000L;
    /** The header key that holds free-form string metadata instead of a tensor. */
    public static final String METADATA_KEY = "__metadata__";

    private static final ObjectMapper HEADER_MAPPER = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /**
     * Largest region mapped at once. Mappings (and ByteBuffers) are limited to 2 GB by the JDK,
     * so a larger tensor is copied in several windows; 512 MB keeps the destination of an
     * F16→F32 widening (twice the source) below that limit too. Package-private and mutable only
     * so tests can exercise the multi-window path with small files. Must be a multiple of 8.
     */
    static volatile int mapWindowBytes = 1 << 29;

    private final Path file;
    private final FileChannel channel;
    private final long headerLength;
    private final long dataLength;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;
    private volatile boolean closed;

    private SafeTensorsFile(Path file, FileChannel channel, long headerLength, long dataLength,
                            Map<String, TensorInfo> tensors, Map<String, String> metadata) {
        this.file = file;
        this.channel = channel;
        this.headerLength = headerLength;
        this.dataLength = dataLength;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /**
     * Opens {@code file}, reads and validates its header. The tensor data is not read.
     *
     * @throws SafeTensorsException if the file breaks the format (message names file and key)
     * @throws IOException          if the file cannot be read (e.g. {@code NoSuchFileException})
     */
    public static SafeTensorsFile open(Path file) throws IOException {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            // The copy paths move raw little-endian bytes into ND4J's native-order buffers.
            throw new UnsupportedOperationException("safetensors reading needs a little-endian platform");
        }
        FileChannel ch = FileChannel.open(file, StandardOpenOption.READ);
        try {
            SafeTensorsFile f = readHeader(file, ch);
            ch = null;
            return f;
        } finally {
            if (ch != null) {
                ch.close();
            }
        }
    }

    private static SafeTensorsFile readHeader(Path file, FileChannel ch) throws IOException {
        long size = ch.size();
        if (size < 8) {
            throw new SafeTensorsException(file, null, "file is " + size
                    + " bytes, too short for the 8-byte header length (HeaderTooSmall)");
        }
        ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(ch, lenBuf, 0);
        long n = lenBuf.getLong(0);
        // n is a u64: a negative long is > 2^63, so certainly too large.
        if (n < 0 || n > MAX_HEADER_SIZE) {
            throw new SafeTensorsException(file, null, "header length " + Long.toUnsignedString(n)
                    + " exceeds the limit of " + MAX_HEADER_SIZE + " bytes (HeaderTooLarge)");
        }
        if (8 + n > size) {
            throw new SafeTensorsException(file, null, "header length " + n + " reaches beyond the end of the file ("
                    + size + " bytes, so at most " + (size - 8) + " bytes of header) (InvalidHeaderLength)");
        }
        ByteBuffer headerBuf = ByteBuffer.allocate((int) n);
        readFully(ch, headerBuf, 8);
        headerBuf.flip();
        String json;
        try {
            CharBuffer chars = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(headerBuf);
            json = chars.toString();
        } catch (CharacterCodingException e) {
            throw new SafeTensorsException(file, null, "header is not valid UTF-8 (InvalidHeader)", e);
        }
        long dataLength = size - 8 - n;
        Header h = parseHeader(file, json, dataLength);
        return new SafeTensorsFile(file, ch, n, dataLength, h.tensors, h.metadata);
    }

    record Header(Map<String, TensorInfo> tensors, Map<String, String> metadata) {
    }

    /** Parses and validates a header against a data section of {@code dataLength} bytes. */
    static Header parseHeader(Path file, String json, long dataLength) {
        JsonNode root;
        try {
            root = HEADER_MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new SafeTensorsException(file, null, "header is not valid JSON: " + e.getOriginalMessage()
                    + (e.getLocation() != null ? " at column " + e.getLocation().getColumnNr() : "")
                    + " (InvalidHeaderDeserialization)", e);
        }
        if (root == null || !root.isObject()) {
            throw new SafeTensorsException(file, null, "header must be a JSON object, found "
                    + (root == null ? "nothing" : root.getNodeType()) + " (InvalidHeaderDeserialization)");
        }
        Map<String, String> metadata = Collections.emptyMap();
        List<TensorInfo> infos = new ArrayList<>(root.size());
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String key = e.getKey();
            JsonNode v = e.getValue();
            if (METADATA_KEY.equals(key)) {
                metadata = parseMetadata(file, v);
            } else {
                infos.add(parseEntry(file, key, v));
            }
        }
        // The reference sorts by (begin, end) and then requires the entries to tile [0, dataLength).
        infos.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long expectedBegin = 0;
        String previous = null;
        for (TensorInfo t : infos) {
            if (t.end() > dataLength) {
                throw new SafeTensorsException(file, t.name(), "data_offsets [" + t.begin() + ", " + t.end()
                        + "] lie outside the data section of " + dataLength + " bytes (file truncated?)");
            }
            if (t.begin() != expectedBegin) {
                String problem;
                if (previous == null) {
                    problem = "data_offsets [" + t.begin() + ", " + t.end() + "] leave the first " + t.begin()
                            + " bytes of the data section unused; the first tensor must begin at 0";
                } else if (t.begin() < expectedBegin) {
                    problem = "data_offsets [" + t.begin() + ", " + t.end() + "] overlap tensor '" + previous
                            + "' which ends at " + expectedBegin;
                } else {
                    problem = "data_offsets [" + t.begin() + ", " + t.end() + "] leave a gap of "
                            + (t.begin() - expectedBegin) + " bytes after tensor '" + previous + "' which ends at "
                            + expectedBegin;
                }
                throw new SafeTensorsException(file, t.name(), problem + " (InvalidOffset)");
            }
            long numel;
            long nbytes;
            try {
                numel = 1;
                for (long d : t.shape()) {
                    numel = Math.multiplyExact(numel, d);
                }
                nbytes = Math.multiplyExact(numel, (long) t.dtype().size());
            } catch (ArithmeticException ex) {
                throw new SafeTensorsException(file, t.name(), "shape " + Arrays.toString(t.shape())
                        + " overflows a 64-bit size (ValidationOverflow)");
            }
            if (nbytes != t.byteSize()) {
                throw new SafeTensorsException(file, t.name(), "shape " + Arrays.toString(t.shape()) + " of dtype "
                        + t.dtype() + " needs " + numel + " × " + t.dtype().size() + " = " + nbytes
                        + " bytes but data_offsets [" + t.begin() + ", " + t.end() + "] span " + t.byteSize()
                        + " bytes (TensorInvalidInfo)");
            }
            expectedBegin = t.end();
            previous = t.name();
        }
        if (expectedBegin != dataLength) {
            throw new SafeTensorsException(file, previous, "the tensors cover " + expectedBegin
                    + " bytes but the data section holds " + dataLength
                    + " bytes; the last tensor must end at the end of the file (MetadataIncompleteBuffer)");
        }
        Map<String, TensorInfo> byName = new LinkedHashMap<>();
        for (TensorInfo t : infos) {
            byName.put(t.name(), t);
        }
        return new Header(Collections.unmodifiableMap(byName), metadata);
    }

    private static Map<String, String> parseMetadata(Path file, JsonNode v) {
        if (v.isNull()) {
            // serde reads `null` for an Option as None.
            return Collections.emptyMap();
        }
        if (!v.isObject()) {
            throw new SafeTensorsException(file, METADATA_KEY, "must be a JSON object of strings, found "
                    + v.getNodeType() + " (InvalidHeaderDeserialization)");
        }
        Map<String, String> m = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = v.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw new SafeTensorsException(file, METADATA_KEY, "value of '" + e.getKey()
                        + "' must be a string, found " + e.getValue().getNodeType() + " (InvalidHeaderDeserialization)");
            }
            m.put(e.getKey(), e.getValue().textValue());
        }
        return Collections.unmodifiableMap(m);
    }

    private static TensorInfo parseEntry(Path file, String key, JsonNode v) {
        if (!v.isObject()) {
            throw new SafeTensorsException(file, key, "entry must be a JSON object with dtype, shape and data_offsets, found "
                    + v.getNodeType() + " (InvalidHeaderDeserialization)");
        }
        JsonNode dtypeNode = v.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new SafeTensorsException(file, key, (dtypeNode == null ? "missing field 'dtype'"
                    : "'dtype' must be a string, found " + dtypeNode.getNodeType()) + " (InvalidHeaderDeserialization)");
        }
        SafeTensorsDtype dtype = SafeTensorsDtype.fromName(dtypeNode.textValue());
        if (dtype == null) {
            throw new SafeTensorsException(file, key, "unknown dtype '" + dtypeNode.textValue() + "' (known: "
                    + Arrays.toString(SafeTensorsDtype.values()) + ")");
        }
        long[] shape = nonNegativeLongs(file, key, v, "shape", -1);
        long[] offsets = nonNegativeLongs(file, key, v, "data_offsets", 2);
        if (offsets[1] < offsets[0]) {
            throw new SafeTensorsException(file, key, "data_offsets [" + offsets[0] + ", " + offsets[1]
                    + "] end before they begin (InvalidOffset)");
        }
        return new TensorInfo(key, dtype, shape, offsets[0], offsets[1]);
    }

    private static long[] nonNegativeLongs(Path file, String key, JsonNode entry, String field, int requiredLength) {
        JsonNode a = entry.get(field);
        if (a == null) {
            throw new SafeTensorsException(file, key, "missing field '" + field + "' (InvalidHeaderDeserialization)");
        }
        if (!a.isArray() || (requiredLength >= 0 && a.size() != requiredLength)) {
            throw new SafeTensorsException(file, key, "'" + field + "' must be an array of "
                    + (requiredLength >= 0 ? requiredLength + " " : "") + "non-negative integers, found " + a
                    + " (InvalidHeaderDeserialization)");
        }
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode x = a.get(i);
            if (!x.isIntegralNumber() || !x.canConvertToLong() || x.longValue() < 0) {
                throw new SafeTensorsException(file, key, "'" + field + "' must hold non-negative integers, found "
                        + a + " (InvalidHeaderDeserialization)");
            }
            out[i] = x.longValue();
        }
        return out;
    }

    private static void readFully(FileChannel ch, ByteBuffer dst, long position) throws IOException {
        long pos = position;
        while (dst.hasRemaining()) {
            int r = ch.read(dst, pos);
            if (r < 0) {
                throw new EOFException("unexpected end of file at byte " + pos);
            }
            pos += r;
        }
    }

    /** The file this was opened from. */
    public Path file() {
        return file;
    }

    /** The tensor keys in the order of their data in the file (the order the reference writer chose). */
    public List<String> keys() {
        return List.copyOf(tensors.keySet());
    }

    /** Number of tensors. */
    public int size() {
        return tensors.size();
    }

    public boolean contains(String key) {
        return tensors.containsKey(key);
    }

    /** All header entries, keyed by name, in data order (unmodifiable). */
    public Map<String, TensorInfo> infos() {
        return tensors;
    }

    /**
     * The header entry of {@code key}.
     *
     * @throws SafeTensorsException if the file has no such tensor
     */
    public TensorInfo info(String key) {
        TensorInfo t = tensors.get(key);
        if (t == null) {
            throw new SafeTensorsException(file, key, "no such tensor in this file (" + tensors.size() + " tensors)");
        }
        return t;
    }

    /** The {@code __metadata__} map (empty if the header has none), unmodifiable. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Length of the JSON header in bytes (including the padding spaces). */
    public long headerLength() {
        return headerLength;
    }

    /** Absolute file position of the data section: {@code 8 + headerLength()}. */
    public long dataStart() {
        return 8 + headerLength;
    }

    /** Length of the data section in bytes. */
    public long dataLength() {
        return dataLength;
    }

    /**
     * The tensor {@code key} as a new INDArray with the file's shape; F16 and BF16 are widened to
     * FLOAT (exactly). F32→FLOAT, F64→DOUBLE, I8→INT8, U8→UINT8, I16→INT16, U16→UINT16,
     * I32→INT32, U32→UINT32, I64→INT64, U64→UINT64, BOOL→BOOL.
     *
     * @throws SafeTensorsException for a missing key or a dtype without ND4J type (FP8, C64)
     * @throws UncheckedIOException if reading the file fails
     */
    public INDArray get(String key) {
        return get(key, true);
    }

    /**
     * The tensor {@code key} as a new INDArray. With {@code widenToFloat} false, F16 stays HALF
     * and BF16 stays BFLOAT16 (their bytes copied unchanged); other dtypes are unaffected.
     */
    public INDArray get(String key, boolean widenToFloat) {
        ensureOpen();
        TensorInfo t = info(key);
        SafeTensorsDtype dt = t.dtype();
        if (dt.nd4jType() == null) {
            throw new SafeTensorsException(file, key, "dtype " + dt
                    + " has no ND4J counterpart and cannot be read as an INDArray (use getBytes)");
        }
        boolean widen = widenToFloat && dt.isHalfFloat();
        DataType outType = widen ? DataType.FLOAT : dt.nd4jType();
        long[] shape = t.shape();
        // Loaded weights outlive any workspace a caller may have open (e.g. a training step).
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            if (t.numel() == 0) {
                return Nd4j.create(outType, shape);
            }
            INDArray out = Nd4j.createUninitialized(outType, shape);
            copyInto(t, out, widen);
            return out;
        }
    }

    /** Copies tensor {@code t}'s bytes from the file into {@code out}, window by window. */
    private void copyInto(TensorInfo t, INDArray out, boolean widen) {
        SafeTensorsDtype dt = t.dtype();
        String key = t.name();
        long nbytes = t.byteSize();
        int window = mapWindowBytes;
        try {
            for (long off = 0; off < nbytes; off += window) {
                int len = (int) Math.min(window, nbytes - off);
                ByteBuffer src = channel.map(FileChannel.MapMode.READ_ONLY, dataStart() + t.begin() + off, len);
                if (widen) {
                    // 2 source bytes become 4 destination bytes.
                    NativeBuffers.widen(src, NativeBuffers.bytes(out, off * 2, len * 2), dt == SafeTensorsDtype.BF16);
                } else {
                    NativeBuffers.bytes(out, off, len).put(src);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": reading tensor '" + key + "' failed", e);
        }
    }

    /**
     * The raw little-endian bytes of tensor {@code key}: a read-only slice of the memory-mapped
     * file (no copy), position 0, limit = byte size.
     *
     * @throws SafeTensorsException if the key is missing or the tensor is larger than 2 GB
     */
    public ByteBuffer getBytes(String key) {
        ensureOpen();
        TensorInfo t = info(key);
        if (t.byteSize() > Integer.MAX_VALUE) {
            throw new SafeTensorsException(file, key, t.byteSize() + " bytes is more than one ByteBuffer can map (2 GB)");
        }
        try {
            return channel.map(FileChannel.MapMode.READ_ONLY, dataStart() + t.begin(), t.byteSize())
                    .order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": mapping tensor '" + key + "' failed", e);
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException(file + " is closed");
        }
    }

    @Override
    public void close() throws IOException {
        if (!closed) {
            closed = true;
            channel.close();
        }
    }

    @Override
    public String toString() {
        return "SafeTensorsFile[" + file + ", " + tensors.size() + " tensors]";
    }
}
