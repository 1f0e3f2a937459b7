package org.peft4j.core.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.SafeTensors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
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
 *   <li>{@code trainer_state.json} — the {@link TrainerState}: global step, epoch and batch
 *       position, schedule step, RNG states, loader settings, optimizer step counts, listener
 *       state, and the config ({@link #toJson}, {@link #fromJson}).</li>
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

    private static final Logger LOG = LoggerFactory.getLogger(TrainerCheckpoint.class);
    private static final Pattern NAME = Pattern.compile("checkpoint-(\\d+)");
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private TrainerCheckpoint() {
    }

    /** The folder name for a checkpoint after {@code step} updates. */
    public static String folderName(long step) {
        return "checkpoint-" + step;
    }

    /**
     * Writes a checkpoint folder atomically (replacing a folder of the same name).
     *
     * @param parameters       trainable parameter values by name
     * @param optimizerTensors {@link OptimizerState#tensors()}
     */
    public static void write(Path dir, TrainerState state, Map<String, INDArray> parameters,
                             Map<String, INDArray> optimizerTensors) {
        try {
            byte[] json = MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(toJson(state));
            AtomicFiles.replaceDirectory(dir, tmp -> {
                SafeTensors.write(tmp.resolve(PARAMETERS_FILE), parameters, Map.of("format", "pt"));
                SafeTensors.write(tmp.resolve(OPTIMIZER_FILE), optimizerTensors, Map.of("format", "pt"));
                AtomicFiles.writeBytes(tmp.resolve(STATE_FILE), json);
            });
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write checkpoint " + dir, e);
        }
    }

    /** The {@link TrainerState} of a checkpoint folder ({@link #readState} then {@link #fromJson}). */
    public static TrainerState readTrainerState(Path dir) {
        return fromJson(readState(dir));
    }

    /** {@code trainer_state.json} of a state (keys in the order the format has always had). */
    public static ObjectNode toJson(TrainerState s) {
        ObjectNode n = MAPPER.createObjectNode();
        n.put("format", FORMAT);
        n.put("version", VERSION);
        n.put("global_step", s.globalStep());
        n.put("epoch", s.epoch());
        n.put("batch_in_epoch", s.batchInEpoch());
        // the schedule is a function of the update count; kept apart in the format for readers
        n.put("schedule_step", s.globalStep());
        n.put("total_steps", s.totalSteps());
        n.put("num_batches", s.numBatches());
        TrainerState.LoaderState loader = s.loader();
        if (loader != null) {
            ObjectNode l = n.putObject("loader");
            l.put("seed", loader.seed());
            l.put("shuffle", loader.shuffle());
            l.put("batch_size", loader.batchSize());
            l.put("drop_last", loader.dropLast());
            l.put("num_batches", loader.numBatches());
            l.put("dataset_size", loader.datasetSize());
        } else {
            n.putNull("loader");
        }
        ArrayNode r = n.putArray("rng_states");
        s.rngStates().forEach(r::add);
        ObjectNode o = n.putObject("optimizer");
        o.put("type", s.optimizerType());
        if (!Double.isNaN(s.learningRate())) {
            o.put("learning_rate", s.learningRate());
        }
        ObjectNode steps = o.putObject("steps");
        s.optimizerSteps().forEach(steps::put);
        ObjectNode w = n.putObject("log_window");
        w.put("loss_sum", s.logWindow().lossSum());
        w.put("steps", s.logWindow().steps());
        w.put("tokens", s.logWindow().tokens());
        n.put("last_eval_step", s.lastEvalStep());
        ObjectNode em = n.putObject("last_eval_metrics");
        s.lastEvalMetrics().forEach((k, v) -> {
            if (Double.isFinite(v)) {
                em.put(k, v);
            } else {
                em.putNull(k);
            }
        });
        ObjectNode ls = n.putObject("listeners");
        s.listenerStates().forEach(ls::set);
        ObjectNode ps = n.putObject("parameters");
        s.parameterShapes().forEach((k, shape) -> {
            ArrayNode a = ps.putArray(k);
            for (long d : shape) {
                a.add(d);
            }
        });
        if (s.config() != null && !s.config().isMissingNode()) {
            n.set("config", s.config());
        }
        return n;
    }

    /**
     * A state from {@code trainer_state.json} (format and version already checked by
     * {@link #readState}). Absent entries read as "nothing yet": step 0, no RNG states, an empty
     * log window, no evaluation (-1), no learning rate (NaN).
     */
    public static TrainerState fromJson(JsonNode st) {
        JsonNode l = st.path("loader");
        TrainerState.LoaderState loader = l.isObject()
                ? new TrainerState.LoaderState(l.path("seed").asLong(), l.path("shuffle").asBoolean(), l.path("batch_size").asInt(),
                l.path("drop_last").asBoolean(), l.path("num_batches").asInt(), l.path("dataset_size").asInt())
                : null;
        List<Long> rngStates = new ArrayList<>();
        st.path("rng_states").forEach(x -> rngStates.add(x.asLong()));
        JsonNode opt = st.path("optimizer");
        Map<String, Long> steps = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = opt.path("steps").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            steps.put(e.getKey(), e.getValue().asLong());
        }
        JsonNode w = st.path("log_window");
        TrainerState.LogWindow window = new TrainerState.LogWindow(w.path("loss_sum").asDouble(0.0),
                w.path("steps").asLong(0), w.path("tokens").asLong(0));
        Map<String, Double> em = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = st.path("last_eval_metrics").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            em.put(e.getKey(), e.getValue().isNull() ? Double.NaN : e.getValue().asDouble());
        }
        Map<String, JsonNode> listeners = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = st.path("listeners").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            listeners.put(e.getKey(), e.getValue());
        }
        Map<String, long[]> shapes = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = st.path("parameters").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            long[] shape = new long[e.getValue().size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = e.getValue().get(i).asLong();
            }
            shapes.put(e.getKey(), shape);
        }
        return new TrainerState(st.path("global_step").asLong(), st.path("epoch").asInt(), st.path("batch_in_epoch").asInt(),
                st.path("total_steps").asLong(), st.path("num_batches").asInt(), loader, rngStates,
                opt.path("type").asText(), opt.has("learning_rate") ? opt.path("learning_rate").asDouble() : Double.NaN,
                steps, window, st.path("last_eval_step").asLong(-1), em, listeners, shapes, st.path("config"));
    }

    /**
     * Deletes the oldest checkpoint folders under {@code outputDir} beyond {@code limit}, never
     * {@code keep} ({@code limit <= 0}: keeps all). A folder that cannot be deleted is logged and left.
     */
    public static void prune(Path outputDir, Path keep, int limit) {
        if (limit <= 0) {
            return;
        }
        List<Path> all = list(outputDir);
        int excess = all.size() - limit;
        for (Path p : all) {
            if (excess <= 0) {
                break;
            }
            if (p.equals(keep)) {
                continue;
            }
            try {
                // renamed aside first (one atomic step), then deleted: a process killed while
                // deleting leaves a hidden remnant, never a visible checkpoint with files missing
                Path doomed = p.resolveSibling("." + p.getFileName() + ".deleting");
                AtomicFiles.deleteRecursively(doomed);
                java.nio.file.Files.move(p, doomed, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
                AtomicFiles.deleteRecursively(doomed);
                excess--;
            } catch (IOException e) {
                LOG.warn("could not delete old checkpoint {}: {}", p, e.toString());
            }
        }
    }

    /**
     * The trainable parameters stored in a checkpoint folder; a non-finite one is reported as
     * {@link org.peft4j.core.io.FiniteCheck} says (a warning, or an error under its strict policy).
     */
    public static Map<String, INDArray> readParameters(Path dir) {
        Path f = dir.resolve(PARAMETERS_FILE);
        requireFile(f);
        try {
            Map<String, INDArray> m = SafeTensors.load(f);
            m.forEach((k, v) -> org.peft4j.core.io.FiniteCheck.check(v, k, f));
            return m;
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
