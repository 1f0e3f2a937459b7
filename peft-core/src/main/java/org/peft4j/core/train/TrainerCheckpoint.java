package org.peft4j.core.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The layout of a training checkpoint folder {@code <outputDir>/checkpoint-<step>/}:
 * <ul>
 *   <li>{@code trainable_parameters.safetensors} — the trainable parameters by name;</li>
 *   <li>{@code optimizer.safetensors} — optimizer state tensors ({@code <param>.exp_avg}, …);</li>
 *   <li>{@code trainer_state.json} — global step, epoch and batch position, schedule step,
 *       RNG states, loader settings, optimizer step counts, listener state, and the config.</li>
 * </ul>
 * The folder is written to a temporary sibling and renamed into place, so a folder with this
 * name is always complete.
 */
public final class TrainerCheckpoint {
    public static final String PARAMETERS_FILE = "trainable_parameters.safetensors";
    public static final String OPTIMIZER_FILE = "optimizer.safetensors";
    public static final String STATE_FILE = "trainer_state.json";
    public static final String FORMAT = "peft4j-trainer-checkpoint";
    public static final int VERSION = 1;

    private static final Pattern NAME = Pattern.compile("checkpoint-(\\d+)");
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private TrainerCheckpoint() {
    }

    /** The folder name for a checkpoint after {@code step} updates. */
    public static String folderName(long step) {
        return "checkpoint-" + step;
    }

    /** The trainable parameters stored in a checkpoint folder. */
    public static Map<String, INDArray> readParameters(Path dir) {
        Path f = dir.resolve(PARAMETERS_FILE);
        requireFile(f);
        try {
            return SafeTensors.load(f);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read checkpoint parameters " + f, e);
        }
    }

    /** The optimizer state tensors stored in a checkpoint folder. */
    public static Map<String, INDArray> readOptimizerTensors(Path dir) {
        Path f = dir.resolve(OPTIMIZER_FILE);
        requireFile(f);
        try {
            return SafeTensors.load(f);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read checkpoint optimizer state " + f, e);
        }
    }

    /** The parsed {@code trainer_state.json}, checked for format and version. */
    public static JsonNode readState(Path dir) {
        Path f = dir.resolve(STATE_FILE);
        requireFile(f);
        JsonNode n;
        try {
            n = MAPPER.readTree(f.toFile());
        } catch (IOException e) {
            throw new IllegalArgumentException("checkpoint state " + f + " is not valid JSON: " + e.getMessage(), e);
        }
        if (n == null || !FORMAT.equals(n.path("format").asText())) {
            throw new IllegalArgumentException("checkpoint state " + f + " is not a " + FORMAT + " file");
        }
        if (n.path("version").asInt() != VERSION) {
            throw new IllegalArgumentException("checkpoint state " + f + " has version " + n.path("version").asInt()
                    + ", this reader supports " + VERSION);
        }
        return n;
    }

    /** Checkpoint folders under {@code outputDir}, oldest (smallest step) first. */
    public static List<Path> list(Path outputDir) {
        List<Path> out = new ArrayList<>();
        if (!Files.isDirectory(outputDir)) {
            return out;
        }
        try (Stream<Path> s = Files.list(outputDir)) {
            s.filter(p -> NAME.matcher(p.getFileName().toString()).matches())
                    .filter(p -> Files.isRegularFile(p.resolve(STATE_FILE)))
                    .sorted(Comparator.comparingLong(TrainerCheckpoint::stepOf))
                    .forEach(out::add);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list checkpoints in " + outputDir, e);
        }
        return out;
    }

    /** The newest checkpoint folder under {@code outputDir}, if any. */
    public static Optional<Path> latest(Path outputDir) {
        List<Path> all = list(outputDir);
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    static long stepOf(Path dir) {
        Matcher m = NAME.matcher(dir.getFileName().toString());
        if (!m.matches()) {
            throw new IllegalArgumentException("not a checkpoint folder name: " + dir.getFileName());
        }
        return Long.parseLong(m.group(1));
    }

    private static void requireFile(Path f) {
        if (!Files.isRegularFile(f)) {
            throw new IllegalArgumentException("checkpoint file " + f + " does not exist");
        }
    }
}
