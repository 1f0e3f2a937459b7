/**
 * Text generation: {@link org.peft4j.core.model.generate.Generator} (batched, left-padded prompts,
 * per-layer KV caches, or recompute-everything for reference), {@link org.peft4j.core.model.generate.GenerationConfig}
 * (greedy or seeded sampling with temperature, top-k, top-p, repetition penalty, stop tokens) and the
 * individual token-selection rules in {@link org.peft4j.core.model.generate.LogitsProcessing}.
 */
package org.peft4j.core.model.generate;
