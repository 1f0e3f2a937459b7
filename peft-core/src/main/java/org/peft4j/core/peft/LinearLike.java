package org.peft4j.core.peft;

/**
 * Marks a module that computes {@code x·Wᵀ + b} without being an {@link org.peft4j.core.nn.Linear}
 * (e.g. a quantized linear layer), so that {@code target_modules = "all-linear"} includes it, as
 * PEFT includes bitsandbytes' {@code Linear4bit}.
 */
public interface LinearLike {
}
