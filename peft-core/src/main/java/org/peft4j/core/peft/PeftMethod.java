package org.peft4j.core.peft;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;

import java.util.List;
import java.util.Map;

/**
 * A PEFT method (LoRA, IA3, prompt tuning, ...), discovered with {@link java.util.ServiceLoader}:
 * an implementation lists itself in {@code META-INF/services/org.peft4j.core.peft.PeftMethod}.
 *
 * <p>The {@code model} argument is always the user's model (the tree under
 * {@code base_model.model} of a {@link PeftModel}); module paths are relative to it. Trainability
 * is driven by {@link PeftModel}: it freezes the base model once, then makes exactly the
 * {@link #adapterParameters} of the active adapter trainable.
 */
public interface PeftMethod {

    /** PEFT's {@code peft_type} value, e.g. {@code "LORA"}. */
    String peftType();

    /** The config class read from {@code adapter_config.json} for this type. */
    Class<? extends PeftConfig> configClass();

    /**
     * Adds adapter {@code adapterName} to the model, rewriting the tree in place (e.g. wrapping
     * target layers). When {@code forLoading} is true the adapter's tensors will be overwritten
     * right after, so initializations that cost time or change the base weights (PiSSA, OLoRA)
     * must be skipped. Returns the paths of the modules that now carry the adapter.
     *
     * @throws IllegalArgumentException when the config does not fit the model (no target found,
     *                                  unsupported module type), naming what is wrong
     */
    List<String> inject(Module model, PeftConfig config, String adapterName, boolean forLoading);

    /**
     * The adapter's tensors under the keys PEFT saves (adapter name removed, with the
     * {@link PeftModel#MODEL_PREFIX} where PEFT uses it), e.g.
     * {@code base_model.model.encoder.layer.0.attention.self.query.lora_A.weight}. Modules to save
     * are handled by {@link PeftModel} and must not be included.
     */
    Map<String, INDArray> adapterStateDict(Module model, PeftConfig config, String adapterName);

    /**
     * Loads tensors saved in PEFT layout (as {@link #adapterStateDict} produces, or with the
     * adapter name still inside the key) into adapter {@code adapterName}. Every key must be used
     * and every adapter tensor must be provided; errors name the key, the expected and the found
     * shape, and {@code source}.
     */
    void loadAdapterStateDict(Module model, PeftConfig config, String adapterName, Map<String, INDArray> tensors,
                              String source);

    /** The parameters that train with this adapter, under their paths in {@code model}. */
    Map<String, Parameter> adapterParameters(Module model, PeftConfig config, String adapterName);

    /** Makes {@code adapterName} the adapter used by forward passes. */
    void setActiveAdapter(Module model, String adapterName);

    /** Removes an adapter's layers and tensors (the wrapped modules stay in place). */
    void deleteAdapter(Module model, String adapterName);

    /** Turns every adapter of this method off (outputs equal the base model's) or back on. */
    void setAdaptersEnabled(Module model, boolean enabled);

    /** Whether {@link #merge}, {@link #unmerge} and {@link #unload} with merging are available. */
    default boolean supportsMerge() {
        return false;
    }

    /** Folds the named adapters into the base weights. */
    default void merge(Module model, List<String> adapterNames) {
        throw new UnsupportedOperationException(peftType() + " adapters cannot be merged into the base weights");
    }

    /** Undoes every {@link #merge}, restoring the base weights. */
    default void unmerge(Module model) {
        throw new UnsupportedOperationException(peftType() + " adapters cannot be merged into the base weights");
    }

    /** Whether some adapter is currently merged. */
    default boolean isMerged(Module model) {
        return false;
    }

    /**
     * Builds adapter {@code newName} as a weighted combination of existing adapters (PEFT's
     * {@code add_weighted_adapter}) and returns its config; {@code svdRank} may be null.
     */
    default PeftConfig addWeightedAdapter(Module model, Map<String, PeftConfig> configs, List<String> adapters,
                                          List<Double> weights, String newName, String combinationType, Integer svdRank) {
        throw new UnsupportedOperationException(peftType() + " adapters cannot be combined");
    }

    /**
     * Removes every adapter layer, putting the wrapped modules back; with {@code merge}, the
     * named adapters are folded into the weights first. Returns the plain model (the same object
     * as {@code model} unless the root itself was wrapped).
     */
    Module unload(Module model, boolean merge, List<String> adapterNames);
}
