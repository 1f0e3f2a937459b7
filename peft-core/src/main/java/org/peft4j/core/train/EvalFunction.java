package org.peft4j.core.train;

import org.peft4j.core.nn.Module;

import java.util.Map;

/**
 * Computes evaluation metrics over a set of batches. The {@link Trainer} calls it with the
 * model in eval mode and gradient recording off; metric names are free-form
 * ({@code eval_loss}, {@code accuracy}, …) and are what early stopping refers to.
 */
@FunctionalInterface
public interface EvalFunction {
    Map<String, Double> evaluate(Module model, Iterable<Batch> batches);
}
