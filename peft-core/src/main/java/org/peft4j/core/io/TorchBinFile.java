package org.peft4j.core.io;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * A PyTorch state dict saved by {@code torch.save} (since 1.6): a zip holding
 * {@code <name>/data.pkl} (the pickle that builds the dict), {@code <name>/data/<key>} (one raw
 * little-endian storage each) and {@code <name>/version}. This is the {@code pytorch_model.bin} of
 * older Hugging Face checkpoints, PEFT's legacy {@code adapter_model.bin} and AdapterHub's
 * {@code pytorch_adapter.bin}.
 *
 * <p>Loading such a file in Python runs its pickle, which can call anything. Here the pickle is run
 * by {@link RestrictedUnpickler}, which knows only {@code collections.OrderedDict}, the two tensor
 * rebuild functions and the storage types of F32/F16/BF16/F64/I64/I32/I16/I8/U8/BOOL; any other
 * global or opcode is refused by name before anything is built. Opening parses the pickle and
 * checks every tensor against its storage (the storage exists, has exactly the element count the
 * pickle claims, and every element the tensor's size, stride and offset reach lies inside it, all
 * computed without overflow) before any tensor data is read. Tensors may share a storage and be
 * non-contiguous; {@link #get} copies each into a new row-major INDArray.
 *
 * <p>Storages are read through the zip (they are stored uncompressed by torch); a storage over
 * 2 GB is refused with a message saying so (convert such a checkpoint to safetensors).
 */
public final class TorchBinFile implements WeightFile {
    /** Largest pickle accepted: a state dict's pickle is a few hundred bytes per tensor. */
    public static final long MAX_PICKLE_BYTES = 100_000_000L;
    /** Largest single storage read into memory (a Java array). */
    static final long MAX_STORAGE_BYTES = Integer.MAX_VALUE - 64;

    private final Path file;
    private final ZipFile zip;
    private final String prefix;
    private final Map<String, RestrictedUnpickler.TensorRef> tensors;
    private final Map<String, TensorInfo> infos;
    /** The storage read last, kept because tensors sharing one usually follow each other. */
    private String cachedKey;
    private byte[] cachedBytes;

    private TorchBinFile(Path file, ZipFile zip, String prefix, Map<String, RestrictedUnpickler.TensorRef> tensors,
                         Map<String, TensorInfo> infos) {
        this.file = file;
        this.zip = zip;
        this.prefix = prefix;
        this.tensors = tensors;
        this.infos = infos;
    }

    /** True if {@code file} starts like a zip archive (what every {@code torch.save} since 1.6 writes). */
    public static boolean looksLikeZip(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] magic = in.readNBytes(4);
            return magic.length == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
        }
    }

    /**
     * Opens {@code file}, runs its pickle through the restricted unpickler and validates every
     * tensor against its storage. No tensor data is read.
     *
     * @throws TorchBinException if the file is not a torch zip, its pickle holds anything but a
     *                           flat dict of tensors, or a size does not add up (names file, key, global)
     * @throws IOException       if the file cannot be read
     */
    public static TorchBinFile open(Path file) throws IOException {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new UnsupportedOperationException("torch .bin reading needs a little-endian platform");
        }
        if (!Files.isRegularFile(file)) {
            throw new java.nio.file.NoSuchFileException(file.toString());
        }
        if (!looksLikeZip(file)) {
            byte[] head;
            try (InputStream in = Files.newInputStream(file)) {
                head = in.readNBytes(2);
            }
            boolean legacyPickle = head.length == 2 && (head[0] & 0xff) == 0x80;
            throw new TorchBinException(file, null, legacyPickle
                    ? "this is the legacy torch.save format (before PyTorch 1.6, no zip); re-save it with a newer"
                    + " torch or convert it to safetensors"
                    : "not a PyTorch checkpoint (a torch.save zip archive was expected)");
        }
        ZipFile zip;
        try {
            zip = new ZipFile(file.toFile());
        } catch (ZipException e) {
            throw new TorchBinException(file, null, "damaged zip archive: " + e.getMessage(), e);
        }
        boolean ok = false;
        try {
            TorchBinFile f = read(file, zip);
            ok = true;
            return f;
        } finally {
            if (!ok) {
                zip.close();
            }
        }
    }

    private static TorchBinFile read(Path file, ZipFile zip) throws IOException {
        ZipEntry pkl = null;
        List<String> names = new ArrayList<>();
        try {
            for (Enumeration<? extends ZipEntry> en = zip.entries(); en.hasMoreElements(); ) {
                ZipEntry e = en.nextElement();
                names.add(e.getName());
                String n = e.getName();
                // torch writes <archive name>/data.pkl at depth one
                if (n.endsWith("/data.pkl") && n.indexOf('/') == n.length() - "/data.pkl".length()) {
                    if (pkl != null) {
                        throw new TorchBinException(file, null, "two pickles in one archive (" + pkl.getName()
                                + ", " + n + ")");
                    }
                    pkl = e;
                }
            }
        } catch (IllegalArgumentException e) {
            if (e instanceof TorchBinException t) {
                throw t;
            }
            throw new TorchBinException(file, null, "damaged zip archive: " + e.getMessage(), e);
        }
        if (pkl == null) {
            throw new TorchBinException(file, null, "the zip holds no <name>/data.pkl, so it is not a torch.save"
                    + " checkpoint (" + names.size() + " entries" + (names.isEmpty() ? "" : ", e.g. " + names.get(0)) + ")");
        }
        String prefix = pkl.getName().substring(0, pkl.getName().length() - "data.pkl".length());
        checkByteOrder(file, zip, prefix);
        byte[] pickle = readEntry(file, zip, pkl, MAX_PICKLE_BYTES, "the pickle data.pkl");
        Object root = RestrictedUnpickler.load(file, pickle);
        if (!(root instanceof Map<?, ?> dict)) {
            throw new TorchBinException(file, null, "the pickle holds " + RestrictedUnpickler.typeName(root)
                    + ", not a state dict (a dict of tensors)");
        }
        Map<String, RestrictedUnpickler.TensorRef> tensors = new LinkedHashMap<>();
        Map<String, TensorInfo> infos = new LinkedHashMap<>();
        Map<String, Long> storageBytes = new LinkedHashMap<>();
        long fileSize = Files.size(file);
        for (Map.Entry<?, ?> e : dict.entrySet()) {
            if (!(e.getKey() instanceof String key)) {
                throw new TorchBinException(file, null, "state dict key " + RestrictedUnpickler.typeName(e.getKey())
                        + " is not a string");
            }
            if (!(e.getValue() instanceof RestrictedUnpickler.TensorRef t)) {
                throw new TorchBinException(file, key, "value is " + RestrictedUnpickler.typeName(e.getValue())
                        + ", not a tensor (only flat state dicts of tensors are read)");
            }
            RestrictedUnpickler.StorageRef s = t.storage();
            Long have = storageBytes.get(s.key());
            if (have == null) {
                ZipEntry entry = zip.getEntry(prefix + "data/" + s.key());
                if (entry == null) {
                    throw new TorchBinException(file, key, "its storage " + prefix + "data/" + s.key()
                            + " is missing from the archive");
                }
                // A storage's bytes must really be in the file: torch stores them uncompressed, so a
                // compressed entry (whose declared size could be a zip bomb's gigabytes) is refused.
                if (entry.getMethod() != ZipEntry.STORED || entry.getSize() != entry.getCompressedSize()
                        || entry.getSize() > fileSize) {
                    throw new TorchBinException(file, key, "storage " + entry.getName() + " is "
                            + (entry.getMethod() != ZipEntry.STORED ? "compressed (torch.save stores storages uncompressed)"
                            : "declared as " + entry.getSize() + " bytes in a file of " + fileSize + " bytes"));
                }
                have = entry.getSize();
                storageBytes.put(s.key(), have);
            }
            infos.put(key, check(file, key, t, have));
            tensors.put(key, t);
        }
        return new TorchBinFile(file, zip, prefix, Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(infos));
    }

    /** torch ≥ 2.1 records the byte order; storages are read as little-endian. */
    private static void checkByteOrder(Path file, ZipFile zip, String prefix) throws IOException {
        ZipEntry bo = zip.getEntry(prefix + "byteorder");
        if (bo != null) {
            String order = new String(readEntry(file, zip, bo, 16, "byteorder"), java.nio.charset.StandardCharsets.US_ASCII).strip();
            if (!order.equals("little")) {
                throw new TorchBinException(file, null, "storages are in '" + order + "' byte order; only little-endian"
                        + " checkpoints are read");
            }
        }
    }

    /**
     * Checks tensor {@code t} against its storage of {@code entryBytes} bytes, exactly: every
     * product and sum in long arithmetic with overflow detection, so a claimed size of 10¹² or
     * 2⁶³ elements is reported as that number, never wrapped.
     */
    private static TensorInfo check(Path file, String key, RestrictedUnpickler.TensorRef t, long entryBytes) {
        RestrictedUnpickler.StorageRef s = t.storage();
        int size = s.dtype().size();
        long storageBytes;
        try {
            storageBytes = Math.multiplyExact(s.numel(), (long) size);
        } catch (ArithmeticException e) {
            throw new TorchBinException(file, key, "storage '" + s.key() + "' claims " + s.numel() + " elements of "
                    + size + " bytes, more than 2^63 bytes");
        }
        if (storageBytes != entryBytes) {
            throw new TorchBinException(file, key, "storage '" + s.key() + "' claims " + s.numel() + " " + s.dtype()
                    + " elements (" + storageBytes + " bytes) but the archive entry holds " + entryBytes + " bytes");
        }
        long[] shape = t.shape();
        long numel;
        long lastIndex;
        try {
            numel = 1;
            for (long d : shape) {
                numel = Math.multiplyExact(numel, d);
            }
            lastIndex = t.offset();
            if (numel > 0) {
                for (int i = 0; i < shape.length; i++) {
                    lastIndex = Math.addExact(lastIndex, Math.multiplyExact(shape[i] - 1, t.stride()[i]));
                }
            }
        } catch (ArithmeticException e) {
            throw new TorchBinException(file, key, "size " + Arrays.toString(shape) + " with stride "
                    + Arrays.toString(t.stride()) + " overflows a 64-bit element count");
        }
        if (numel > 0 && lastIndex >= s.numel()) {
            throw new TorchBinException(file, key, "size " + Arrays.toString(shape) + ", stride "
                    + Arrays.toString(t.stride()) + " and offset " + t.offset() + " reach element " + lastIndex
                    + " of storage '" + s.key() + "', which has " + s.numel() + " elements");
        }
        long bytes;
        try {
            bytes = Math.multiplyExact(numel, (long) size);
        } catch (ArithmeticException e) {
            throw new TorchBinException(file, key, "size " + Arrays.toString(shape) + " overflows a 64-bit byte count");
        }
        // begin/end: the byte range the tensor's row-major copy occupies (there is no shared data section)
        return new TensorInfo(key, s.dtype(), shape, 0, bytes);
    }

    /** Reads a whole zip entry whose declared size is at most {@code limit}, refusing any other length. */
    private static byte[] readEntry(Path file, ZipFile zip, ZipEntry e, long limit, String what) throws IOException {
        long n = e.getSize();
        if (n < 0 || n > limit) {
            throw new TorchBinException(file, null, what + " declares " + (n < 0 ? "an unknown size" : n + " bytes")
                    + " (limit " + limit + " bytes)");
        }
        if (e.getMethod() != ZipEntry.STORED && e.getMethod() != ZipEntry.DEFLATED) {
            throw new TorchBinException(file, null, what + " uses zip compression method " + e.getMethod());
        }
        byte[] buf = new byte[(int) n];
        try (InputStream in = zip.getInputStream(e)) {
            int got = in.readNBytes(buf, 0, buf.length);
            if (got != n) {
                throw new TorchBinException(file, null, what + " declares " + n + " bytes but holds " + got + " (truncated?)");
            }
            if (in.read() >= 0) {
                throw new TorchBinException(file, null, what + " holds more than the " + n + " bytes it declares");
            }
        } catch (ZipException | EOFException ex) {
            throw new TorchBinException(file, null, what + " cannot be read: " + ex.getMessage(), ex);
        }
        return buf;
    }

    public Path file() {
        return file;
    }

    /** Tensor keys in the pickle's (= the state dict's) order. */
    public List<String> keys() {
        return List.copyOf(tensors.keySet());
    }

    public int size() {
        return tensors.size();
    }

    public boolean contains(String key) {
        return tensors.containsKey(key);
    }

    /** dtype and shape of {@code key}; {@code begin} is 0 and {@code end} its byte size when copied row-major. */
    public TensorInfo info(String key) {
        TensorInfo t = infos.get(key);
        if (t == null) {
            throw new TorchBinException(file, key, "no such tensor in this file (" + tensors.size() + " tensors)");
        }
        return t;
    }

    /** No free-form metadata: a state dict has none ({@code _metadata} holds module versions only). */
    public Map<String, String> metadata() {
        return Map.of();
    }

    /** Every tensor's header information, in {@link #keys()} order. */
    public Map<String, TensorInfo> infos() {
        return infos;
    }

    /** The strides (in elements) of {@code key} as saved. */
    public long[] stride(String key) {
        info(key);
        return tensors.get(key).stride().clone();
    }

    /** The storage offset (in elements) of {@code key} as saved. */
    public long storageOffset(String key) {
        info(key);
        return tensors.get(key).offset();
    }

    /** The tensor {@code key}; F16/BF16 widened to FLOAT. */
    public INDArray get(String key) {
        return get(key, true);
    }

    /**
     * The tensor {@code key} as a new row-major INDArray (strides and storage offset applied). With
     * {@code widenToFloat} false, F16 stays HALF and BF16 stays BFLOAT16.
     */
    public INDArray get(String key, boolean widenToFloat) {
        TensorInfo info = info(key);
        SafeTensorsDtype dt = info.dtype();
        boolean widen = widenToFloat && dt.isHalfFloat();
        DataType outType = widen ? DataType.FLOAT : dt.nd4jType();
        ByteBuffer raw = getBytes(key);
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            if (info.numel() == 0) {
                return Nd4j.create(outType, info.shape());
            }
            INDArray out = Nd4j.createUninitialized(outType, info.shape());
            if (widen) {
                NativeBuffers.widen(raw, NativeBuffers.bytes(out, 0, raw.remaining() * 2), dt == SafeTensorsDtype.BF16);
            } else {
                NativeBuffers.bytes(out, 0, raw.remaining()).put(raw);
            }
            return out;
        }
    }

    /**
     * The little-endian bytes of {@code key} in row-major order (a new heap buffer: strided and
     * offset tensors are gathered from their storage).
     */
    public ByteBuffer getBytes(String key) {
        TensorInfo info = info(key);
        RestrictedUnpickler.TensorRef t = tensors.get(key);
        long nbytes = info.byteSize();
        if (nbytes > MAX_STORAGE_BYTES) {
            throw new TorchBinException(file, key, nbytes + " bytes is more than one Java array can hold; convert"
                    + " this checkpoint to safetensors to load it");
        }
        int es = info.dtype().size();
        byte[] out = new byte[(int) nbytes];
        if (nbytes > 0) {
            byte[] storage = storage(key, t.storage());
            long[] shape = info.shape();
            long[] stride = t.stride();
            if (isContiguous(shape, stride)) {
                System.arraycopy(storage, Math.toIntExact(t.offset() * es), out, 0, out.length);
            } else {
                gather(storage, t.offset(), shape, stride, es, out);
            }
        }
        return ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static boolean isContiguous(long[] shape, long[] stride) {
        long expected = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            if (shape[i] != 1 && stride[i] != expected) {
                return false;
            }
            expected *= shape[i];
        }
        return true;
    }

    /** Copies a strided view into row-major order, one innermost row at a time, with an index odometer. */
    private static void gather(byte[] storage, long offset, long[] shape, long[] stride, int es, byte[] out) {
        int rank = shape.length;
        long[] idx = new long[rank];
        int o = 0;
        long total = out.length / es;
        long inner = shape[rank - 1];
        long innerStride = stride[rank - 1];
        for (long done = 0; done < total; done += inner) {
            long base = offset;
            for (int d = 0; d < rank - 1; d++) {
                base += idx[d] * stride[d];
            }
            for (long j = 0; j < inner; j++) {
                System.arraycopy(storage, (int) ((base + j * innerStride) * es), out, o, es);
                o += es;
            }
            for (int d = rank - 2; d >= 0; d--) {
                if (++idx[d] < shape[d]) {
                    break;
                }
                idx[d] = 0;
            }
        }
    }

    private synchronized byte[] storage(String key, RestrictedUnpickler.StorageRef s) {
        if (s.key().equals(cachedKey)) {
            return cachedBytes;
        }
        ZipEntry e = zip.getEntry(prefix + "data/" + s.key());
        byte[] b;
        try {
            if (e.getSize() > MAX_STORAGE_BYTES) {
                throw new TorchBinException(file, key, "storage '" + s.key() + "' is " + e.getSize() + " bytes, more"
                        + " than one Java array can hold; convert this checkpoint to safetensors to load it");
            }
            b = readEntry(file, zip, e, MAX_STORAGE_BYTES, "storage '" + s.key() + "' of tensor '" + key + "'");
        } catch (IOException ex) {
            throw new UncheckedIOException(file + ": reading tensor '" + key + "' failed", ex);
        }
        cachedKey = s.key();
        cachedBytes = b;
        return b;
    }

    @Override
    public void close() throws IOException {
        cachedBytes = null;
        zip.close();
    }

    @Override
    public String toString() {
        return "TorchBinFile[" + file + ", " + tensors.size() + " tensors]";
    }
}
