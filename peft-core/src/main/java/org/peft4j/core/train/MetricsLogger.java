package org.peft4j.core.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Appends one JSON object per line to a JSONL file (normally {@code <outputDir>/metrics.jsonl}):
 * <pre>
 * {"type":"train","step":10,"epoch":0.25,"loss":0.69,"learning_rate":1e-4,"grad_norm":1.2,"tokens_per_second":800.0}
 * {"type":"eval","step":40,"epoch":1.0,"eval_loss":0.41,"accuracy":0.9}
 * </pre>
 * Non-finite numbers are written as {@code null} so every line is strict JSON. A fresh run
 * (step 0) starts a new file; a resumed run first drops the lines written after the
 * checkpoint's step (rewritten atomically), so the file shows one consistent history.
 */
public final class MetricsLogger implements TrainingListener {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final Path file;

    public MetricsLogger(Path file) {
        if (file == null) {
            throw new IllegalArgumentException("metrics file must not be null");
        }
        this.file = file;
    }

    public Path file() {
        return file;
    }

    @Override
    public void onTrainBegin(TrainerContext ctx) {
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            List<String> keep = new ArrayList<>();
            if (ctx.globalStep() > 0 && Files.exists(file)) {
                for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                    if (line.isBlank()) {
                        continue;
                    }
                    JsonNode n;
                    try {
                        n = MAPPER.readTree(line);
                    } catch (IOException e) {
                        continue; // a line cut by a crash: drop it
                    }
                    if (n.path("step").asLong(Long.MAX_VALUE) <= ctx.globalStep()) {
                        keep.add(line);
                    }
                }
            }
            Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
            Files.write(tmp, keep, StandardCharsets.UTF_8);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare metrics log " + file, e);
        }
    }

    @Override
    public void onLog(TrainerContext ctx, LogEvent e) {
        ObjectNode n = MAPPER.createObjectNode();
        n.put("type", "train");
        n.put("step", e.step());
        put(n, "epoch", e.epoch());
        put(n, "loss", e.loss());
        put(n, "learning_rate", e.lr());
        put(n, "grad_norm", e.gradNorm());
        put(n, "tokens_per_second", e.tokensPerSecond());
        put(n, "elapsed_seconds", e.elapsedSeconds());
        append(n);
    }

    @Override
    public void onEvaluate(TrainerContext ctx, EvalEvent e) {
        ObjectNode n = MAPPER.createObjectNode();
        n.put("type", "eval");
        n.put("step", e.step());
        put(n, "epoch", e.epoch());
        for (Map.Entry<String, Double> m : new TreeMap<>(e.metrics()).entrySet()) {
            put(n, m.getKey(), m.getValue());
        }
        append(n);
    }

    private static void put(ObjectNode n, String key, double v) {
        if (Double.isFinite(v)) {
            n.put(key, v);
        } else {
            n.putNull(key);
        }
    }

    private void append(ObjectNode n) {
        try (Writer w = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                StandardOpenOption.APPEND, StandardOpenOption.WRITE)) {
            w.write(MAPPER.writeValueAsString(n));
            w.write('\n');
        } catch (IOException ex) {
            throw new UncheckedIOException("cannot append to metrics log " + file, ex);
        }
    }
}
