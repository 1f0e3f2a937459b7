package org.peft4j.core.model.bert;

import com.fasterxml.jackson.databind.JsonNode;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.CheckpointWeights;
import org.peft4j.core.io.HfFolder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Reading and writing BERT checkpoint folders, and the strict key check shared by the model
 * and its heads.
 */
final class BertCheckpoint {
    private static final Logger LOG = LoggerFactory.getLogger(BertCheckpoint.class);

    /** Hugging Face task heads that may sit next to {@code bert.*} in a checkpoint and that BertModel ignores. */
    static final List<String> HEAD_PREFIXES = List.of("cls.", "classifier.", "qa_outputs.");

    private BertCheckpoint() {
    }

    /** A folder's configuration and every tensor in it (buffers in {@link BertKeys#IGNORED_BUFFERS} dropped). */
    record Contents(BertConfig config, Map<String, INDArray> weights, String source) {
    }

    static Contents read(Path dir) {
        try {
            JsonNode cfg = HfFolder.readConfig(dir);
            BertConfig config = BertConfig.fromJson(cfg, dir.resolve(HfFolder.CONFIG_FILE).toString());
            if (!HfFolder.hasWeights(dir)) {
                throw new IllegalArgumentException(dir + ": no " + HfFolder.WEIGHTS_FILE + " (or sharded index) in the checkpoint folder");
            }
            Map<String, INDArray> weights = new LinkedHashMap<>();
            try (CheckpointWeights w = HfFolder.openWeights(dir)) {
                for (String k : w.keys()) {
                    if (isIgnoredBuffer(k)) {
                        LOG.debug("{}: ignoring buffer {}", dir, k);
                        continue;
                    }
                    weights.put(k, w.get(k));
                }
                return new Contents(config, weights, w.source().toString());
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read BERT checkpoint " + dir + ": " + e.getMessage(), e);
        }
    }

    static boolean isIgnoredBuffer(String key) {
        String k = key.startsWith("bert.") ? key.substring(5) : key;
        return BertKeys.IGNORED_BUFFERS.contains(k);
    }

    /**
     * BertModel keys from a checkpoint's keys: strips a {@code bert.} prefix, drops buffers and,
     * in a prefixed (task-model) checkpoint, the task head ({@link #HEAD_PREFIXES}).
     */
    static Map<String, INDArray> normalizeKeys(Map<String, INDArray> weights, String source) {
        boolean prefixed = false;
        for (String k : weights.keySet()) {
            if (k.startsWith("bert.")) {
                prefixed = true;
                break;
            }
        }
        Map<String, INDArray> out = new LinkedHashMap<>();
        List<String> dropped = new ArrayList<>();
        for (Map.Entry<String, INDArray> e : weights.entrySet()) {
            String k = e.getKey();
            if (isIgnoredBuffer(k)) {
                continue;
            }
            String key = k;
            if (k.startsWith("bert.")) {
                key = k.substring(5);
            } else if (prefixed && HEAD_PREFIXES.stream().anyMatch(k::startsWith)) {
                dropped.add(k);
                continue;
            }
            if (out.put(key, e.getValue()) != null) {
                throw new IllegalArgumentException("checkpoint " + source + " holds '" + key + "' both with and without the 'bert.' prefix");
            }
        }
        if (!dropped.isEmpty()) {
            LOG.info("{}: ignoring task-head tensors {} (loading the encoder only)", source, dropped);
        }
        return out;
    }

    /**
     * Strict comparison of a checkpoint's tensors with the model's expected keys and shapes; the
     * error lists every missing key, every unexpected key and every shape mismatch.
     */
    static void checkKeys(Map<String, long[]> expected, Map<String, INDArray> found, String source) {
        List<String> missing = new ArrayList<>();
        List<String> shapes = new ArrayList<>();
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            INDArray v = found.get(e.getKey());
            if (v == null) {
                missing.add(e.getKey());
            } else if (!Arrays.equals(v.shape(), e.getValue())) {
                shapes.add("'" + e.getKey() + "': expected " + Arrays.toString(e.getValue()) + ", found " + Arrays.toString(v.shape()));
            }
        }
        Set<String> unexpected = new TreeSet<>(found.keySet());
        unexpected.removeAll(expected.keySet());
        if (missing.isEmpty() && unexpected.isEmpty() && shapes.isEmpty()) {
            return;
        }
        StringBuilder sb = new StringBuilder("checkpoint ").append(source).append(" does not match the model:");
        if (!missing.isEmpty()) {
            sb.append(" missing keys ").append(missing).append(';');
        }
        if (!unexpected.isEmpty()) {
            sb.append(" unexpected keys ").append(unexpected).append(';');
        }
        if (!shapes.isEmpty()) {
            sb.append(" shape mismatch for ").append(String.join(", ", shapes)).append(';');
        }
        sb.setLength(sb.length() - 1);
        throw new IllegalArgumentException(sb.toString());
    }

    /** Writes {@code model.safetensors} then {@code config.json}, each atomically. */
    static void write(Path dir, Map<String, Object> config, Map<String, INDArray> tensors) {
        try {
            Files.createDirectories(dir);
            HfFolder.writeWeights(dir, tensors);
            HfFolder.writeConfig(dir, config);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write BERT checkpoint to " + dir + ": " + e.getMessage(), e);
        }
    }
}
