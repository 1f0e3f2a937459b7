package org.peft4j.core.peft;

import org.peft4j.core.nn.Module;

import java.util.Set;

/**
 * A module that a PEFT method put in place of an original module and that wraps it (PEFT's
 * {@code BaseTunerLayer}): a LoRA linear layer wrapping its {@code base_layer}, say. Target
 * matching never descends into an adapter layer, and {@code "all-linear"} treats an adapter layer
 * whose class name contains "Linear" as the linear layer it wraps.
 */
public interface AdapterLayer {
    /** The original module this layer wraps. */
    Module baseLayer();

    /** The adapters this layer holds, in insertion order. */
    Set<String> adapterNames();
}
