package org.peft4j.core.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where a {@link Trainer} is, as a value: everything besides the tensors that a checkpoint must
 * hold for a resumed run to reproduce the uninterrupted one (position in the data, RNG states,
 * optimizer step counts, the half-filled log window, the last evaluation, listener state such
 * as early stopping's best metric) and what it was trained with (loader settings, parameter
 * shapes, the config). {@link TrainerCheckpoint} writes it as {@code trainer_state.json}.
 *
 * @param globalStep      updates done
 * @param epoch           current epoch (0-based)
 * @param batchInEpoch    next micro-batch within the epoch
 * @param totalSteps      updates planned by the last {@code fit} (0 before one)
 * @param numBatches      batches per epoch of the last {@code fit}
 * @param loader          the training loader's settings, or null before a {@code fit}
 * @param rngStates       states of the trainer's RNGs, in the order they were given
 * @param optimizerType   {@link OptimizerState#type()}
 * @param learningRate    the optimizer's current learning rate (NaN when a checkpoint does not record it)
 * @param optimizerSteps  {@link OptimizerState#steps()}
 * @param logWindow       the progress window not yet logged
 * @param lastEvalStep    step of the last evaluation, -1 if none
 * @param lastEvalMetrics its metrics (NaN for a metric that was not finite)
 * @param listenerStates  {@link TrainingListener#saveState()} by {@link TrainingListener#stateKey()}
 * @param parameterShapes the trained parameters' shapes by name
 * @param config          {@link TrainingConfig#toJson()} of the run (a missing node when unknown)
 */
public record TrainerState(long globalStep, int epoch, int batchInEpoch, long totalSteps, int numBatches,
                           LoaderState loader, List<Long> rngStates, String optimizerType, double learningRate,
                           Map<String, Long> optimizerSteps, LogWindow logWindow, long lastEvalStep,
                           Map<String, Double> lastEvalMetrics, Map<String, JsonNode> listenerStates,
                           Map<String, long[]> parameterShapes, JsonNode config) {

    public TrainerState {
        rngStates = List.copyOf(rngStates);
        optimizerSteps = Collections.unmodifiableMap(new LinkedHashMap<>(optimizerSteps));
        lastEvalMetrics = Collections.unmodifiableMap(new LinkedHashMap<>(lastEvalMetrics));
        listenerStates = Collections.unmodifiableMap(new LinkedHashMap<>(listenerStates));
        Map<String, long[]> shapes = new LinkedHashMap<>();
        parameterShapes.forEach((k, v) -> shapes.put(k, v.clone()));
        parameterShapes = Collections.unmodifiableMap(shapes);
        if (logWindow == null) {
            throw new IllegalArgumentException("trainer state needs a log window (LogWindow.EMPTY when nothing is pending)");
        }
    }

    /** The training loader as checkpointed: a resumed run warns when its loader differs. */
    public record LoaderState(long seed, boolean shuffle, int batchSize, boolean dropLast, int numBatches, int datasetSize) {
        /** The settings of {@code loader}. */
        public static LoaderState of(DataLoader<?> loader) {
            return new LoaderState(loader.seed(), loader.shuffle(), loader.batchSize(), loader.dropLast(),
                    loader.numBatches(), loader.dataset().size());
        }

        /** What changes the data order compared with {@code now} (empty when it is the same). */
        public List<String> differences(DataLoader<?> now) {
            List<String> diffs = new ArrayList<>();
            if (seed != now.seed()) {
                diffs.add("seed " + seed + " -> " + now.seed());
            }
            if (shuffle != now.shuffle()) {
                diffs.add("shuffle " + shuffle + " -> " + now.shuffle());
            }
            if (numBatches != now.numBatches()) {
                diffs.add("batches per epoch " + numBatches + " -> " + now.numBatches());
            }
            if (datasetSize != now.dataset().size()) {
                diffs.add("dataset size " + datasetSize + " -> " + now.dataset().size());
            }
            return diffs;
        }
    }

    /**
     * The losses and tokens summed since the last progress line; kept so that a run interrupted
     * mid-window logs the same averages after resuming.
     */
    public record LogWindow(double lossSum, long steps, long tokens) {
        public static final LogWindow EMPTY = new LogWindow(0.0, 0, 0);
    }

    /**
     * The config values that differ from {@code now} ({@code key: saved -> now}), ignoring
     * {@code output_dir}; empty when the config was not recorded.
     */
    public List<String> configDifferences(TrainingConfig now) {
        List<String> diffs = new ArrayList<>();
        if (config == null || !config.isObject()) {
            return diffs;
        }
        ObjectNode current = now.toJson();
        for (Iterator<String> it = current.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (k.equals("output_dir")) {
                continue;
            }
            JsonNode a = config.get(k);
            JsonNode b = current.get(k);
            if (a == null || !equalJson(a, b)) {
                diffs.add(k + ": " + a + " -> " + b);
            }
        }
        return diffs;
    }

    private static boolean equalJson(JsonNode a, JsonNode b) {
        if (a.isNumber() && b.isNumber()) {
            return a.asDouble() == b.asDouble();
        }
        return a.equals(b);
    }
}
