package org.peft4j.core.train;

import org.peft4j.core.nn.Module;
import org.peft4j.core.tensor.Tensor;

/** Runs the model on a batch and returns the scalar loss to minimise (a one-element tensor). */
@FunctionalInterface
public interface LossFunction {
    Tensor loss(Module model, Batch batch);
}
