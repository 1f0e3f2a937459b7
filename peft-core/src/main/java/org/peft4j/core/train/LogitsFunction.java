package org.peft4j.core.train;

import org.peft4j.core.nn.Module;
import org.peft4j.core.tensor.Tensor;

/** Runs the model on a batch and returns logits {@code [B, C]} (sequence) or {@code [B, T, C]} (token) classification. */
@FunctionalInterface
public interface LogitsFunction {
    Tensor logits(Module model, Batch batch);
}
