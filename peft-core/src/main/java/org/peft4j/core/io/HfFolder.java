package org.peft4j.core.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Files of a Hugging Face checkpoint folder ({@code save_pretrained} layout):
 * {@code config.json} and the weights, either {@code model.safetensors} or shards
 * {@code model-00001-of-0000N.safetensors} listed in {@code model.safetensors.index.json}.
 *
 * <p>Every file is written atomically, shards before the index, and stale weight files from a
 * previous layout (a single file replaced by shards or the other way round) are removed only
 * after the new layout is complete, so a reader always finds one consistent set. Overwriting a
 * sharded checkpoint by another sharded one with the same shard names is not atomic as a whole;
 * to replace a whole folder atomically, write it inside {@link AtomicFiles#replaceDirectory}.
 */
public final class HfFolder {
    private static final Logger LOG = LoggerFactory.getLogger(HfFolder.class);

    public static final String CONFIG_FILE = "config.json";
    public static final String WEIGHTS_FILE = "model.safetensors";
    public static final String WEIGHTS_INDEX_FILE = "model.safetensors.index.json";
    /** The PyTorch weights of older checkpoints, read by {@link TorchBinFile} when no safetensors exist. */
    public static final String TORCH_WEIGHTS_FILE = "pytorch_model.bin";
    public static final String TORCH_WEIGHTS_INDEX_FILE = "pytorch_model.bin.index.json";
    /** transformers' default {@code max_shard_size} ("5GB", decimal). */
    public static final long DEFAULT_MAX_SHARD_BYTES = 5_000_000_000L;
    /**
     * The {@code __metadata__} transformers writes, and checks on load ({@code format} must be
     * pt, tf, flax or mlx).
     */
    public static final Map<String, String> PT_METADATA = Map.of("format", "pt");

    private HfFolder() {
    }

    /**
     * {@code dir/config.json} as a tree.
     *
     * @throws CheckpointException if the folder or file is missing or the JSON is invalid (names the file)
     */
    public static JsonNode readConfig(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new CheckpointException(dir + ": not a checkpoint folder (no such directory)");
        }
        Path f = dir.resolve(CONFIG_FILE);
        if (!Files.isRegularFile(f)) {
            throw new CheckpointException(f + ": file not found (the checkpoint folder has no " + CONFIG_FILE + ")");
        }
        return JsonFiles.readObject(f);
    }

    /**
     * Writes {@code config} (an ObjectNode, Map, record or bean) to {@code dir/config.json},
     * pretty-printed with sorted keys as transformers does; creates {@code dir} if needed.
     */
    public static void writeConfig(Path dir, Object config) throws IOException {
        JsonNode tree = config instanceof JsonNode n ? n : JsonFiles.mapper().valueToTree(config);
        if (!(tree instanceof ObjectNode)) {
            throw new IllegalArgumentException(dir.resolve(CONFIG_FILE) + ": config must be a JSON object, got "
                    + tree.getNodeType());
        }
        JsonFiles.write(dir.resolve(CONFIG_FILE), tree);
    }

    /**
     * True if {@code dir} has {@code model.safetensors}, {@code model.safetensors.index.json},
     * {@code pytorch_model.bin} or {@code pytorch_model.bin.index.json}.
     */
    public static boolean hasWeights(Path dir) {
        return Files.isRegularFile(dir.resolve(WEIGHTS_FILE)) || Files.isRegularFile(dir.resolve(WEIGHTS_INDEX_FILE))
                || Files.isRegularFile(dir.resolve(TORCH_WEIGHTS_FILE))
                || Files.isRegularFile(dir.resolve(TORCH_WEIGHTS_INDEX_FILE));
    }

    /** All weights of {@code dir}, copied into ND4J memory; F16/BF16 widened to FLOAT. */
    public static Map<String, INDArray> readWeights(Path dir) throws IOException {
        return readWeights(dir, true);
    }

    /** All weights of {@code dir}; see {@link SafeTensorsFile#get(String, boolean)} for {@code widenToFloat}. */
    public static Map<String, INDArray> readWeights(Path dir, boolean widenToFloat) throws IOException {
        try (CheckpointWeights w = CheckpointWeights.open(dir)) {
            return w.readAll(widenToFloat);
        }
    }

    /** The weights of {@code dir} opened lazily (close it when done). */
    public static CheckpointWeights openWeights(Path dir) throws IOException {
        return CheckpointWeights.open(dir);
    }

    /** {@link #writeWeights(Path, Map, long, Map)} with 5 GB shards and {@code {"format": "pt"}}. */
    public static void writeWeights(Path dir, Map<String, INDArray> tensors) throws IOException {
        writeWeights(dir, tensors, DEFAULT_MAX_SHARD_BYTES, PT_METADATA);
    }

    /** {@link #writeWeights(Path, Map, long, Map)} with {@code {"format": "pt"}}. */
    public static void writeWeights(Path dir, Map<String, INDArray> tensors, long maxShardBytes) throws IOException {
        writeWeights(dir, tensors, maxShardBytes, PT_METADATA);
    }

    /**
     * Writes {@code tensors} into {@code dir} (created if needed): one {@code model.safetensors}
     * if their data fits in {@code maxShardBytes}, else shards of at most {@code maxShardBytes}
     * each (a single larger tensor gets a shard of its own) plus the index. Tensors are assigned
     * to shards greedily in the map's iteration order, as huggingface_hub's
     * {@code split_state_dict_into_shards} does.
     *
     * @param metadata the {@code __metadata__} of every file (transformers needs {@code format=pt})
     */
    public static void writeWeights(Path dir, Map<String, INDArray> tensors, long maxShardBytes,
                                    Map<String, String> metadata) throws IOException {
        if (maxShardBytes <= 0) {
            throw new IllegalArgumentException(dir + ": maxShardBytes must be positive, got " + maxShardBytes);
        }
        if (tensors == null) {
            throw new IllegalArgumentException(dir + ": tensors map is null");
        }
        List<Map<String, INDArray>> shards = new ArrayList<>();
        Map<String, INDArray> current = new LinkedHashMap<>();
        long currentBytes = 0;
        long totalBytes = 0;
        for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
            if (e.getValue() == null) {
                throw new IllegalArgumentException(dir + ": tensor '" + e.getKey() + "' is null");
            }
            SafeTensorsDtype dt;
            try {
                dt = SafeTensorsDtype.fromNd4j(e.getValue().dataType());
            } catch (IllegalArgumentException ex) {
                throw new IllegalArgumentException(dir + ": tensor '" + e.getKey() + "': " + ex.getMessage(), ex);
            }
            long bytes = e.getValue().length() * dt.size();
            if (!current.isEmpty() && currentBytes + bytes > maxShardBytes) {
                shards.add(current);
                current = new LinkedHashMap<>();
                currentBytes = 0;
            }
            current.put(e.getKey(), e.getValue());
            currentBytes += bytes;
            totalBytes += bytes;
        }
        if (!current.isEmpty() || shards.isEmpty()) {
            shards.add(current);
        }
        Files.createDirectories(dir);
        Path single = dir.resolve(WEIGHTS_FILE).toAbsolutePath().normalize();
        Path index = dir.resolve(WEIGHTS_INDEX_FILE);
        Set<Path> oldShards = listedShards(dir, index);

        if (shards.size() == 1) {
            SafeTensors.write(single, shards.get(0), metadata);
            // The single file takes precedence for readers, so the old index is now dead weight.
            deleteStale(index);
            for (Path p : oldShards) {
                if (!p.equals(single)) {
                    deleteStale(p);
                }
            }
            return;
        }
        int n = shards.size();
        Map<String, String> weightMap = new TreeMap<>();
        Set<Path> written = new HashSet<>();
        for (int i = 0; i < n; i++) {
            String name = String.format("model-%05d-of-%05d.safetensors", i + 1, n);
            Path p = dir.resolve(name);
            SafeTensors.write(p, shards.get(i), metadata);
            written.add(p.toAbsolutePath().normalize());
            for (String k : shards.get(i).keySet()) {
                weightMap.put(k, name);
            }
        }
        Map<String, Object> indexJson = new LinkedHashMap<>();
        indexJson.put("metadata", Map.of("total_size", totalBytes));
        indexJson.put("weight_map", weightMap);
        JsonFiles.write(index, indexJson);
        // A leftover single file would shadow the new shards: remove it only now that they are complete.
        deleteStale(single);
        for (Path p : oldShards) {
            if (!written.contains(p)) {
                deleteStale(p);
            }
        }
    }

    /** Shard files named by an existing index (absolute, normalized), or none. Ignores a broken index. */
    private static Set<Path> listedShards(Path dir, Path index) {
        Set<Path> out = new HashSet<>();
        if (!Files.isRegularFile(index)) {
            return out;
        }
        try {
            JsonNode wm = JsonFiles.read(index).get("weight_map");
            Path base = dir.toAbsolutePath().normalize();
            if (wm != null && wm.isObject()) {
                for (JsonNode v : wm) {
                    if (v.isTextual()) {
                        Path p = base.resolve(v.textValue()).normalize();
                        if (p.startsWith(base) && p.getFileName().toString().endsWith(".safetensors")) {
                            out.add(p);
                        }
                    }
                }
            }
        } catch (IOException | IllegalArgumentException e) {
            LOG.warn("ignoring unreadable old index {}: {}", index, e.getMessage());
        }
        return out;
    }

    private static void deleteStale(Path p) throws IOException {
        if (Files.deleteIfExists(p)) {
            LOG.debug("removed stale checkpoint file {}", p);
        }
    }
}
