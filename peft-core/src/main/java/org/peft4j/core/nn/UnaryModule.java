package org.peft4j.core.nn;

import org.peft4j.core.tensor.Tensor;

/** A module with one input and one output (linear layers, norms, dropout, activations, MLPs). */
public interface UnaryModule {
    Tensor forward(Tensor x);
}
