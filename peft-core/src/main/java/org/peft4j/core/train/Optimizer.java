package org.peft4j.core.train;

import org.peft4j.core.nn.Parameter;

import java.util.Map;

/**
 * Updates trainable parameters in place from their gradients. An optimizer is built over a
 * fixed map of named, trainable parameters (frozen ones are rejected) and keeps state only
 * for those. Parameters whose gradient is absent at a step are skipped, as in PyTorch.
 */
public interface Optimizer {

    /** Applies one update to every parameter that has a gradient. */
    void step();

    /** Drops every parameter's gradient (the next backward allocates fresh ones). */
    void zeroGrad();

    /** The learning rate used by the next {@link #step()}. */
    double learningRate();

    /** Sets the learning rate for the next {@link #step()} (a schedule calls this before each update). */
    void setLearningRate(double lr);

    /** The parameters this optimizer updates, by name, in the order given. */
    Map<String, Parameter> parameters();

    /** The weight decay applied to the named parameter (after group rules and overrides). */
    double weightDecayFor(String name);

    /** A copy of the optimizer's state (tensors are duplicated, so later steps do not change it). */
    OptimizerState state();

    /**
     * Restores a state from {@link #state()}. The type must match and every tensor must name a
     * known parameter with the right shape; otherwise an {@link IllegalArgumentException}
     * names the offending key.
     */
    void loadState(OptimizerState state);
}
