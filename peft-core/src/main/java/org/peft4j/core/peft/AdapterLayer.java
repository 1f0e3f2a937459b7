package org.peft4j.core.peft;

import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A module that a PEFT method put in place of an original module and that wraps it (PEFT's
 * {@code BaseTunerLayer}): a LoRA linear layer around its {@code base_layer}, a
 * {@code modules_to_save} wrapper around its {@code original_module}. It holds one or more named
 * adapters and is everything {@link PeftModel} needs to switch, disable, merge, delete, unload,
 * train, save and load them, for any method, in one walk over the tree.
 *
 * <p>Implementations extend {@link BaseAdapterLayer}, which keeps this state. Target matching
 * never descends into an adapter layer; {@code "all-linear"} counts an adapter layer whose base
 * is an {@link org.peft4j.core.nn.LinearLayer} as the linear layer it wraps.
 */
public interface AdapterLayer {
    /** The original module this layer wraps. */
    Module baseLayer();

    /** The adapters this layer holds, in insertion order. */
    Set<String> adapterNames();

    /** The adapters forward passes use (usually one; names this layer does not hold are ignored). */
    List<String> activeAdapters();

    void setActiveAdapters(List<String> adapters);

    /** False inside {@link PeftModel#disableAdapter()}: the layer then computes exactly its base. */
    boolean adaptersEnabled();

    /** Turns the adapters off (merged ones are unmerged first) or back on. */
    void setAdaptersEnabled(boolean enabled);

    /** Folds the named adapters this layer holds into the base weights (skipping merged ones). */
    void merge(List<String> adapters);

    /** Restores the exact base weights from before {@link #merge}, newest merge first. */
    void unmerge();

    boolean isMerged();

    /** The merged adapters, oldest first. */
    List<String> mergedAdapters();

    /** Removes an adapter's tensors; unknown names are ignored; a merged adapter must be unmerged first. */
    void deleteAdapter(String adapter);

    /**
     * The module that takes this layer's place when adapters are unloaded: the base, with
     * {@code merge} the active adapters folded in first (a modules-to-save wrapper gives its
     * active copy).
     */
    Module unwrap(boolean merge);

    /** The parameters that train with an adapter, under paths relative to this layer ({@code lora_A.default.weight}). */
    Map<String, Parameter> adapterParameters(String adapter);

    /**
     * The adapter's tensors under the key suffixes PEFT saves ({@code lora_A.weight},
     * {@code weight} of a module to save); {@link PeftModel} prefixes {@code base_model.model.<path>.}.
     */
    Map<String, Parameter> savedTensors(String adapter);

    /**
     * Other suffixes older or other writers stored these tensors under, mapped to the
     * {@link #savedTensors} suffix they stand for (accepted when loading only).
     */
    default Map<String, String> savedKeyAliases(String adapter) {
        return Map.of();
    }
}
