package org.peft4j.core.train;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * Hooks into a training run. All methods are optional. A listener that has state which must
 * survive a resume (early stopping's best value and patience counter) returns a non-null
 * {@link #stateKey()}; its {@link #saveState()} goes into the checkpoint JSON and comes back
 * through {@link #restoreState(JsonNode)}.
 */
public interface TrainingListener {

    default void onTrainBegin(TrainerContext ctx) {
    }

    default void onStepEnd(TrainerContext ctx, StepEvent step) {
    }

    default void onLog(TrainerContext ctx, LogEvent log) {
    }

    default void onEvaluate(TrainerContext ctx, EvalEvent eval) {
    }

    default void onTrainEnd(TrainerContext ctx, TrainResult result) {
    }

    /** The key of this listener's state in a checkpoint, or null if it has none. */
    default String stateKey() {
        return null;
    }

    default JsonNode saveState() {
        return null;
    }

    default void restoreState(JsonNode state) {
    }
}
