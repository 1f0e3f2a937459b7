package org.peft4j.core.peft;

import org.peft4j.core.model.Backbone;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A PEFT method (LoRA, IA3, prompt tuning, ...), discovered with {@link java.util.ServiceLoader}:
 * an implementation lists itself in {@code META-INF/services/org.peft4j.core.peft.PeftMethod}.
 *
 * <p>A method says only what differs between methods: its config class, how it puts its
 * {@link AdapterLayer}s into a model ({@link #inject}), how stored keys map to the names its
 * layers declare ({@link #normalizeKey}), which other parameters train with it, and optionally
 * merging, weighted combination and input preparation. Everything else — the active adapter,
 * enable/disable, merge/unmerge, delete, unload, trainable parameters, {@code modules_to_save},
 * mixed batches, saving and strict loading — {@link PeftModel} does for every method by walking
 * the adapter layers once ({@link BaseAdapterLayer} keeps each layer's state).
 *
 * <p>The {@code model} argument is always the user's model (the tree under
 * {@code base_model.model} of a {@link PeftModel}); module paths are relative to it.
 */
public interface PeftMethod {

    /** PEFT's {@code peft_type} value, e.g. {@code "LORA"}. */
    String peftType();

    /** The config class read from {@code adapter_config.json} for this type. */
    Class<? extends PeftConfig> configClass();

    /**
     * Adds adapter {@code adapterName} to the model, rewriting the tree in place (wrapping target
     * layers in the method's adapter layers, or adding the adapter to layers that already wrap
     * them). When {@code forLoading} is true the adapter's tensors will be overwritten right after,
     * so initializations that cost time or change the base weights (PiSSA, OLoRA) must be skipped.
     * Returns the paths of the modules that now carry the adapter.
     *
     * @throws IllegalArgumentException when the config does not fit the model (no target found,
     *                                  unsupported module type), naming what is wrong
     */
    List<String> inject(Module model, PeftConfig config, String adapterName, boolean forLoading);

    /**
     * The key a stored tensor stands for, as {@link PeftModel} names it from the layers'
     * {@link AdapterLayer#savedTensors} ({@code base_model.model.<path>.<suffix>}): legacy forms
     * and keys with an adapter name inside ({@code lora_A.default.weight}) reduced to the saved
     * form. Unchanged by default.
     */
    default String normalizeKey(String storedKey) {
        return storedKey;
    }

    /**
     * Whether a stored tensor for (normalized) {@code key} may have another shape with the same
     * number of elements, and is then reshaped (LoRA: DoRA's magnitude vector). No by default.
     */
    default boolean acceptsReshaped(String key) {
        return false;
    }

    /**
     * Parameters outside the adapter layers that train (and are saved) with the adapter, under
     * their paths in {@code model} (LoRA's {@code bias = "all"} / {@code "lora_only"}); saved as
     * {@code base_model.model.<path>}. None by default.
     */
    default Map<String, Parameter> extraParameters(Module model, PeftConfig config, String adapterName) {
        return Map.of();
    }

    /** Whether the method's layers can merge ({@link PeftModel#merge}, {@link PeftModel#mergeAndUnload}). */
    default boolean supportsMerge() {
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
     * The hook for methods that act on a model's inputs rather than (only) on its layers: prompt
     * tuning and P-tuning put virtual-token embeddings in front of {@link BackboneInputs#inputEmbeddings()}
     * (and extend the attention mask), prefix tuning passes per-layer key/value prefixes
     * ({@link BackboneInputs#withPrefix}) and counts them in the position offset. Called by
     * {@link PeftModel#prepareInputs} for the active adapter before the backbone runs, never while
     * adapters are disabled. Methods that only wrap layers keep the default: the inputs unchanged.
     *
     * @param model    the user's model (as for {@link #inject})
     * @param backbone the model's backbone (sizes, {@link Backbone#embed})
     */
    default BackboneInputs prepareInputs(Module model, PeftConfig config, String adapterName, Backbone backbone,
                                         BackboneInputs inputs) {
        return inputs;
    }

    /**
     * True for methods whose {@link #prepareInputs} changes the inputs (prompt tuning, P-tuning,
     * prefix tuning): {@link PeftModel} then installs itself as the
     * {@link org.peft4j.core.model.InputPreparation} of a {@link org.peft4j.core.model.HeadModel},
     * so every forward of the model (and KV-cached generation) runs the hook.
     */
    default boolean preparesInputs() {
        return false;
    }

    /**
     * How many of {@code cachedTokens} in a model's KV caches this method put there itself (a soft
     * prompt fed with the first call): the caller's attention mask does not count them. 0 by default.
     */
    default long virtualTokensInCache(PeftConfig config, long cachedTokens) {
        return 0;
    }

    /**
     * The tensors written to {@code adapter_model.safetensors} for one adapter, given the values of
     * its saved parameters under their saved keys ({@code state}). Unchanged by default; prompt
     * methods write their encoder's output as {@code prompt_embeddings} instead.
     */
    default Map<String, INDArray> stateToSave(Module model, PeftConfig config, String adapterName, Map<String, INDArray> state) {
        return state;
    }

    /** The inverse of {@link #stateToSave} for loading: file tensors → saved-parameter keys. Unchanged by default. */
    default Map<String, INDArray> stateToLoad(Module model, PeftConfig config, String adapterName, Map<String, INDArray> tensors) {
        return tensors;
    }

    /**
     * A config of this method from a PEFT-style JSON object (a {@code peft4j train} recipe's
     * {@code peft} mapping) when the method does not map its config with Jackson; null (the
     * default) to use Jackson.
     */
    default PeftConfig configFromJson(com.fasterxml.jackson.databind.JsonNode tree, String source) {
        return null;
    }

    /**
     * A config of this method from an AdapterHub {@code adapter_config.json} ({@code fusion} false)
     * or {@code adapter_fusion_config.json} ({@code fusion} true), the whole JSON object; null
     * (the default) when this method does not read it. The config must be an {@link AdapterHubConfig}.
     */
    default PeftConfig configFromAdapterHub(Map<String, Object> json, boolean fusion, String source) {
        return null;
    }

    /**
     * Adapter folders that must be loaded (frozen) before an adapter with this config is added, in
     * order, under the names the map gives, e.g. the adapters an AdapterFusion fuses; {@link Peft#apply}
     * loads them. None by default.
     */
    default Map<String, Path> foldersToLoadFirst(PeftConfig config) {
        return Map.of();
    }

    /** Files beyond PEFT's two that this method writes into an adapter's folder (none by default). */
    default void writeExtraFiles(Module model, PeftConfig config, String adapterName, Path dir) throws IOException {
    }

    /** Reads what {@link #writeExtraFiles} wrote, after the adapter's tensors loaded; {@code trainable} as in {@link PeftModel#load}. */
    default void readExtraFiles(Module model, PeftConfig config, String adapterName, Path dir, boolean trainable) {
    }
}
