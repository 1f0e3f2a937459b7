package org.peft4j.core.train;

/** Which optimizer the {@link Trainer} builds from a {@link TrainingConfig}. */
public enum OptimizerType {
    ADAMW,
    SGD
}
