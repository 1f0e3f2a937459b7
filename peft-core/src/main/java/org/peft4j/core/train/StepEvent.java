package org.peft4j.core.train;

/**
 * One finished optimizer update.
 *
 * @param step       updates done so far (1 after the first)
 * @param totalSteps updates planned for the run
 * @param epoch      fractional epoch ({@code epoch index + batches done / batches per epoch})
 * @param loss       mean loss over the update's micro-batches
 * @param lr         learning rate used for the update
 * @param gradNorm   global gradient L2 norm before clipping
 * @param tokens     real (unpadded) tokens in the update's micro-batches
 * @param examples   examples in the update's micro-batches
 */
public record StepEvent(long step, long totalSteps, double epoch, double loss, double lr, double gradNorm,
                        long tokens, long examples) {
}
