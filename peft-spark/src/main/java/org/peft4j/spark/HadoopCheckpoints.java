package org.peft4j.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.train.OptimizerState;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.OptionalLong;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Training checkpoints under one Hadoop file-system URI ({@code file:///…}, {@code hdfs://…},
 * {@code s3a://…}): {@code checkpoint-<step>/} holding the adapter's trainable tensors
 * ({@code parameters.safetensors}), the optimizer state ({@code optimizer.safetensors}) and
 * {@code state.json} (step, optimizer counts, learning rate, loss curve so far).
 *
 * <p>A checkpoint is written into a temporary sibling folder and renamed into place, so a task
 * killed mid-write leaves no folder that {@link #latest()} would pick. Only the files this class
 * writes are read back; a folder without {@code state.json} is ignored.
 */
final class HadoopCheckpoints {
    static final String PARAMETERS = "parameters.safetensors";
    static final String OPTIMIZER = "optimizer.safetensors";
    static final String STATE = "state.json";
    private static final Pattern NAME = Pattern.compile("checkpoint-(\\d+)");

    private final Path root;
    private final FileSystem fs;

    HadoopCheckpoints(String uri) {
        if (uri == null || uri.isBlank()) {
            throw new IllegalArgumentException("checkpoint_dir must be a file-system URI or path");
        }
        this.root = new Path(uri);
        try {
            this.fs = root.getFileSystem(new Configuration());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open the file system of checkpoint_dir " + uri, e);
        }
    }

    /** What a checkpoint restores. */
    record Saved(long step, Map<String, INDArray> parameters, OptimizerState optimizer, double learningRate, double[] losses) {
    }

    /** The highest step with a complete checkpoint. */
    OptionalLong latest() {
        try {
            if (!fs.exists(root)) {
                return OptionalLong.empty();
            }
            long best = -1;
            for (FileStatus s : fs.listStatus(root)) {
                Matcher m = NAME.matcher(s.getPath().getName());
                if (s.isDirectory() && m.matches() && fs.exists(new Path(s.getPath(), STATE))) {
                    best = Math.max(best, Long.parseLong(m.group(1)));
                }
            }
            return best < 0 ? OptionalLong.empty() : OptionalLong.of(best);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list checkpoints in " + root, e);
        }
    }

    /** Writes {@code checkpoint-<step>} and returns its size in bytes. */
    long write(long step, Map<String, INDArray> parameters, OptimizerState optimizer, double learningRate, double[] losses) {
        Path dir = new Path(root, "checkpoint-" + step);
        Path tmp = new Path(root, "_tmp-checkpoint-" + step + "-" + UUID.randomUUID());
        ObjectNode st = JsonFiles.mapper().createObjectNode();
        st.put("step", step);
        st.put("optimizer_type", optimizer.type());
        st.put("learning_rate", learningRate);
        ObjectNode steps = st.putObject("optimizer_steps");
        optimizer.steps().forEach(steps::put);
        var l = st.putArray("losses");
        for (double v : losses) {
            l.add(v);
        }
        try {
            byte[] p = SafeTensors.serialize(parameters, Map.of("format", "pt"));
            byte[] o = SafeTensors.serialize(optimizer.tensors(), Map.of("format", "pt"));
            byte[] s = JsonFiles.toPrettyString(st).getBytes(java.nio.charset.StandardCharsets.UTF_8);
            fs.mkdirs(tmp);
            put(new Path(tmp, PARAMETERS), p);
            put(new Path(tmp, OPTIMIZER), o);
            put(new Path(tmp, STATE), s);
            if (fs.exists(dir)) {
                fs.delete(dir, true);
            }
            if (!fs.rename(tmp, dir)) {
                throw new IOException("rename " + tmp + " -> " + dir + " failed");
            }
            return p.length + o.length + s.length;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write checkpoint " + dir, e);
        }
    }

    /** Deletes all but the newest {@code keep} checkpoints ({@code keep <= 0}: keep all). */
    void prune(int keep) {
        if (keep <= 0) {
            return;
        }
        try {
            java.util.List<Long> steps = new java.util.ArrayList<>();
            for (FileStatus s : fs.listStatus(root)) {
                Matcher m = NAME.matcher(s.getPath().getName());
                if (m.matches()) {
                    steps.add(Long.parseLong(m.group(1)));
                }
            }
            steps.sort(null);
            for (int i = 0; i < steps.size() - keep; i++) {
                fs.delete(new Path(root, "checkpoint-" + steps.get(i)), true);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prune checkpoints in " + root, e);
        }
    }

    Saved read(long step) {
        Path dir = new Path(root, "checkpoint-" + step);
        try {
            JsonNode st = JsonFiles.mapper().readTree(get(new Path(dir, STATE)));
            Map<String, INDArray> params = tensors(get(new Path(dir, PARAMETERS)));
            Map<String, INDArray> opt = tensors(get(new Path(dir, OPTIMIZER)));
            Map<String, Long> counts = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = st.path("optimizer_steps").fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                counts.put(e.getKey(), e.getValue().asLong());
            }
            JsonNode l = st.path("losses");
            double[] losses = new double[l.size()];
            for (int i = 0; i < losses.length; i++) {
                losses[i] = l.get(i).asDouble();
            }
            return new Saved(st.path("step").asLong(), params,
                    new OptimizerState(st.path("optimizer_type").asText(), counts, opt),
                    st.path("learning_rate").asDouble(), losses);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read checkpoint " + dir, e);
        }
    }

    private void put(Path file, byte[] bytes) throws IOException {
        try (FSDataOutputStream out = fs.create(file, true)) {
            out.write(bytes);
        }
    }

    private byte[] get(Path file) throws IOException {
        try (FSDataInputStream in = fs.open(file)) {
            return in.readAllBytes();
        }
    }

    /** Safetensors bytes to tensors (through a local temporary file: the reader memory-maps). */
    private static Map<String, INDArray> tensors(byte[] bytes) throws IOException {
        java.nio.file.Path tmp = Files.createTempFile("peft-spark-", ".safetensors");
        try {
            Files.write(tmp, bytes);
            Map<String, INDArray> m = SafeTensors.load(tmp);
            Map<String, INDArray> out = new LinkedHashMap<>();
            m.forEach((k, v) -> out.put(k, v.dup()));
            return out;
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** Writes {@code files} (name → bytes) into the folder {@code uri}, replacing files of the same name. */
    static void writeFolder(String uri, Map<String, byte[]> files) {
        Path dir = new Path(uri);
        try {
            FileSystem fs = dir.getFileSystem(new Configuration());
            fs.mkdirs(dir);
            for (Map.Entry<String, byte[]> e : files.entrySet()) {
                try (FSDataOutputStream out = fs.create(new Path(dir, e.getKey()), true)) {
                    out.write(e.getValue());
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + dir, e);
        }
    }
}
