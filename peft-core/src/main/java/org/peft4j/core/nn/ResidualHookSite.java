package org.peft4j.core.nn;

import java.util.Map;

/**
 * A block (or sub-layer module) that offers {@link ResidualHook} slots: child names at which a
 * module inserted after a sub-layer takes over its residual step. BERT's two output modules
 * ({@code encoder.layer.N.attention.output}, {@code encoder.layer.N.output}) offer slot
 * {@code adapters}; GPT-2 blocks ({@code transformer.h.N}) and LLaMA/Mistral/Qwen2 decoder layers
 * ({@code model.layers.N}) offer {@code attention_adapters} and {@code output_adapters} — the
 * module names AdapterHub's {@code adapters} library uses at the same places.
 */
public interface ResidualHookSite {

    /** Which sub-layer a slot closes. */
    enum SubLayer { ATTENTION, FEED_FORWARD }

    /** Slot name → the sub-layer whose residual step it replaces, in block order. */
    Map<String, SubLayer> residualHookSlots();

    /** The width of the residual stream, {@code hidden}. */
    int residualWidth();

    /** The index of the transformer layer this site belongs to. */
    int layerIndex();

    /**
     * Registers {@code hook} (a {@link Module} implementing {@link ResidualHook}) as the child
     * {@code slot}.
     *
     * @throws IllegalArgumentException for an unknown slot or one already taken
     */
    void insertResidualHook(String slot, Module hook);

    /** The hook in {@code slot}, or null. */
    default Module residualHook(String slot) {
        return ((Module) this).child(slot);
    }
}
