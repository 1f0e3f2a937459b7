package org.peft4j.core.train;

import org.peft4j.core.nn.Module;

import java.nio.file.Path;

/** What a {@link TrainingListener} can see of, and ask from, the running {@link Trainer}. */
public interface TrainerContext {

    Module model();

    Optimizer optimizer();

    TrainingConfig config();

    /** Updates done so far. */
    long globalStep();

    /** Updates planned for the current {@code fit} (0 before it starts). */
    long totalSteps();

    /** Current epoch index (0-based). */
    int epoch();

    /** Next micro-batch index within the epoch. */
    int batchInEpoch();

    /** True when this run continues from a checkpoint. */
    boolean resumed();

    /** Asks the trainer to stop after the current update (evaluation and the final checkpoint still run). */
    void requestStop(String reason);

    /** Writes a checkpoint of the current state now and returns its folder. */
    Path saveCheckpoint();
}
