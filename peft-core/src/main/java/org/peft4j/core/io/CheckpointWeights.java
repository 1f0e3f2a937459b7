package org.peft4j.core.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.BiConsumer;
import java.util.function.Supplier;

/**
 * The weights of a Hugging Face checkpoint folder, opened lazily: either one
 * {@code model.safetensors} or the shards listed by {@code model.safetensors.index.json}
 * ({@code {"metadata": {...}, "weight_map": {key: shard file}}}).
 *
 * <p>Opening reads and validates every shard's header (not its data) and checks the index against
 * the shards: every shard exists, every key listed for a shard is in it, and every key in a shard
 * is listed for that shard. Tensors are then read one at a time with {@link #get(String)}, each
 * copied once from the memory-mapped shard into ND4J memory — so a model larger than the heap can
 * be converted tensor by tensor (e.g. quantized for QLoRA) by iterating {@link #keys()} or
 * {@link #forEach}. Close it to release the shard files.
 */
public final class CheckpointWeights implements AutoCloseable {
    private final Path source;
    private final Map<Path, WeightFile> shards;
    /** key → its shard, in iteration order: shard by shard (index order), data order within a shard. */
    private final Map<String, WeightFile> byKey;
    private final ObjectNode indexMetadata;

    private CheckpointWeights(Path source, Map<Path, WeightFile> shards, Map<String, WeightFile> byKey,
                              ObjectNode indexMetadata) {
        this.source = source;
        this.shards = shards;
        this.byKey = byKey;
        this.indexMetadata = indexMetadata;
    }

    /**
     * Opens the weights of checkpoint folder {@code dir}: {@code model.safetensors} if present
     * (transformers prefers it too), else {@code model.safetensors.index.json}.
     *
     * @throws CheckpointException if the folder has neither, or the index and shards disagree
     */
    public static CheckpointWeights open(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new CheckpointException(dir + ": not a checkpoint folder (no such directory)");
        }
        Path single = dir.resolve(HfFolder.WEIGHTS_FILE);
        if (Files.isRegularFile(single)) {
            return openFile(single);
        }
        Path index = dir.resolve(HfFolder.WEIGHTS_INDEX_FILE);
        if (Files.isRegularFile(index)) {
            return openIndex(index);
        }
        // older checkpoints: PyTorch .bin, read by the restricted unpickler (transformers' order too)
        Path bin = dir.resolve(HfFolder.TORCH_WEIGHTS_FILE);
        if (Files.isRegularFile(bin)) {
            return openFile(bin);
        }
        Path binIndex = dir.resolve(HfFolder.TORCH_WEIGHTS_INDEX_FILE);
        if (Files.isRegularFile(binIndex)) {
            return openIndex(binIndex);
        }
        throw new CheckpointException(dir + ": no weights found (expected " + HfFolder.WEIGHTS_FILE + ", "
                + HfFolder.WEIGHTS_INDEX_FILE + ", " + HfFolder.TORCH_WEIGHTS_FILE + " or "
                + HfFolder.TORCH_WEIGHTS_INDEX_FILE + ")");
    }

    /**
     * Opens one {@code .safetensors} or PyTorch {@code .bin} file (e.g. an adapter's) through the
     * same interface.
     */
    public static CheckpointWeights openFile(Path file) throws IOException {
        WeightFile f = WeightFile.open(file);
        Map<String, WeightFile> byKey = new LinkedHashMap<>();
        for (String k : f.keys()) {
            byKey.put(k, f);
        }
        Map<Path, WeightFile> shards = new LinkedHashMap<>();
        shards.put(file, f);
        return new CheckpointWeights(file, shards, byKey, JsonNodeFactory.instance.objectNode());
    }

    /**
     * Opens a sharded checkpoint from its index file; shard names are resolved against the
     * index's folder and must stay inside it.
     */
    public static CheckpointWeights openIndex(Path indexFile) throws IOException {
        ObjectNode index = JsonFiles.readObject(indexFile);
        JsonNode wm = index.get("weight_map");
        if (wm == null || !wm.isObject()) {
            throw new CheckpointException(indexFile + ": missing or invalid \"weight_map\" object");
        }
        JsonNode md = index.get("metadata");
        ObjectNode metadata;
        if (md == null || md.isNull()) {
            metadata = JsonNodeFactory.instance.objectNode();
        } else if (md.isObject()) {
            metadata = (ObjectNode) md;
        } else {
            throw new CheckpointException(indexFile + ": \"metadata\" must be an object, found " + md.getNodeType());
        }
        Path dir = indexFile.toAbsolutePath().normalize().getParent();
        // shard name → keys listed for it (shards in sorted name order, keys in index order).
        Map<String, List<String>> listed = new TreeMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = wm.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw new CheckpointException(indexFile + ": weight_map entry '" + e.getKey()
                        + "' must name a shard file, found " + e.getValue());
            }
            listed.computeIfAbsent(e.getValue().textValue(), s -> new ArrayList<>()).add(e.getKey());
        }
        Map<Path, WeightFile> shards = new LinkedHashMap<>();
        Map<String, WeightFile> byKey = new LinkedHashMap<>();
        boolean ok = false;
        try {
            for (Map.Entry<String, List<String>> e : listed.entrySet()) {
                String shardName = e.getKey();
                List<String> keys = e.getValue();
                Path shardPath = dir.resolve(shardName).normalize();
                if (!shardPath.startsWith(dir) || shardPath.equals(dir)) {
                    throw new CheckpointException(indexFile + ": shard '" + shardName + "' (for tensor '" + keys.get(0)
                            + "') lies outside the checkpoint folder");
                }
                // a symlink inside the folder may still lead out of it
                if (Files.exists(shardPath) && !shardPath.toRealPath().startsWith(dir.toRealPath())) {
                    throw new CheckpointException(indexFile + ": shard '" + shardName + "' (for tensor '" + keys.get(0)
                            + "') is a link to " + shardPath.toRealPath() + ", outside the checkpoint folder");
                }
                if (!Files.isRegularFile(shardPath)) {
                    throw new CheckpointException(indexFile + ": shard " + shardPath + " is missing (it should hold "
                            + keys.size() + " tensors, e.g. '" + keys.get(0) + "')");
                }
                WeightFile f = WeightFile.open(shardPath);
                shards.put(shardPath, f);
                for (String k : keys) {
                    if (!f.contains(k)) {
                        throw new CheckpointException(indexFile + ": tensor '" + k + "' is listed for shard "
                                + shardName + " but " + shardPath + " does not contain it");
                    }
                }
                Set<String> listedHere = new HashSet<>(keys);
                for (String k : f.keys()) {
                    if (!listedHere.contains(k)) {
                        JsonNode other = wm.get(k);
                        throw new CheckpointException(shardPath + ": holds tensor '" + k + "' which " + indexFile
                                + (other == null ? " does not list" : " lists for shard " + other.textValue()));
                    }
                    byKey.put(k, f);
                }
            }
            ok = true;
        } finally {
            if (!ok) {
                closeAll(shards.values());
            }
        }
        return new CheckpointWeights(indexFile, shards, byKey, metadata);
    }

    /** The file opened: {@code model.safetensors}, the index file, or the single file given. */
    public Path source() {
        return source;
    }

    /** True if the weights came from a sharded index. */
    public boolean isSharded() {
        return source.getFileName().toString().endsWith(".json");
    }

    /** The shard files (one for an unsharded checkpoint). */
    public List<Path> files() {
        return List.copyOf(shards.keySet());
    }

    /** All tensor keys: shard by shard, in data order within each shard. */
    public List<String> keys() {
        return List.copyOf(byKey.keySet());
    }

    public int size() {
        return byKey.size();
    }

    public boolean contains(String key) {
        return byKey.containsKey(key);
    }

    /** The header entry of {@code key} (dtype, shape, offsets within its shard). */
    public TensorInfo info(String key) {
        return shard(key).info(key);
    }

    /** The shard file that holds {@code key}. */
    public Path fileOf(String key) {
        return shard(key).file();
    }

    /** The index's {@code "metadata"} object (e.g. {@code total_size}); empty when unsharded. */
    public ObjectNode indexMetadata() {
        return indexMetadata.deepCopy();
    }

    /** The {@code __metadata__} of the shard holding {@code key}. */
    public Map<String, String> shardMetadata(String key) {
        return shard(key).metadata();
    }

    /** The tensor {@code key}, read now; F16/BF16 widened to FLOAT. */
    public INDArray get(String key) {
        return get(key, true);
    }

    /**
     * The tensor {@code key}, read now; see {@link SafeTensorsFile#get(String, boolean)}. A
     * floating-point tensor holding NaN or Inf is reported naming it and its file (a checkpoint
     * that diverged, or a damaged download): a warning, or an error under {@link FiniteCheck}'s
     * strict policy.
     */
    public INDArray get(String key, boolean widenToFloat) {
        WeightFile f = shard(key);
        INDArray a = f.get(key, widenToFloat);
        FiniteCheck.check(a, key, f.file());
        return a;
    }

    /** The raw bytes of {@code key}, memory-mapped (see {@link SafeTensorsFile#getBytes}). */
    public ByteBuffer getBytes(String key) {
        return shard(key).getBytes(key);
    }

    /**
     * Calls {@code action} for every tensor in {@link #keys()} order, reading each just before
     * the call, so only one tensor (plus whatever {@code action} keeps) is in memory at a time.
     */
    public void forEach(BiConsumer<String, INDArray> action) {
        for (String k : byKey.keySet()) {
            action.accept(k, get(k));
        }
    }

    /**
     * Suppliers that read each tensor on demand (valid until {@link #close()}), in
     * {@link #keys()} order: for code that takes a name→value map but should not load everything.
     */
    public Map<String, Supplier<INDArray>> suppliers() {
        Map<String, Supplier<INDArray>> m = new LinkedHashMap<>();
        for (String k : byKey.keySet()) {
            m.put(k, () -> get(k));
        }
        return Collections.unmodifiableMap(m);
    }

    /** Every tensor copied into ND4J memory, in {@link #keys()} order. */
    public Map<String, INDArray> readAll(boolean widenToFloat) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        for (String k : byKey.keySet()) {
            out.put(k, get(k, widenToFloat));
        }
        return out;
    }

    private WeightFile shard(String key) {
        WeightFile f = byKey.get(key);
        if (f == null) {
            throw new CheckpointException(source + ": no tensor '" + key + "' in this checkpoint (" + byKey.size()
                    + " tensors)");
        }
        return f;
    }

    @Override
    public void close() throws IOException {
        closeAll(shards.values());
    }

    private static void closeAll(Iterable<? extends WeightFile> files) throws IOException {
        IOException first = null;
        for (WeightFile f : files) {
            try {
                f.close();
            } catch (IOException e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    @Override
    public String toString() {
        return "CheckpointWeights[" + source + ", " + byKey.size() + " tensors in " + shards.size() + " file(s)]";
    }
}
