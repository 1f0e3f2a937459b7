package org.peft4j.prompt;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.nn.EmbeddingLayer;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.BaseAdapterLayer;
import org.peft4j.core.peft.ModuleDict;
import org.peft4j.core.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Holds the prompt sources of a model's prompt-learning adapters. It wraps the word embedding
 * (which it passes through unchanged: a prompt method changes the inputs, not the layer), so the
 * core's adapter walk finds, freezes, trains, deletes and saves them like any adapter layer;
 * the virtual tokens themselves enter through {@code PeftMethod.prepareInputs}.
 */
public final class PromptLayer extends BaseAdapterLayer implements EmbeddingLayer {
    public PromptLayer(EmbeddingLayer base) {
        super("base_layer", (Module) base);
        registerModule("prompt_encoder", new ModuleDict());
    }

    private EmbeddingLayer base() {
        return (EmbeddingLayer) baseLayer();
    }

    void addAdapter(String adapter, PromptSource source) {
        child("prompt_encoder", ModuleDict.class).put(adapter, source);
        registerAdapter(adapter);
    }

    /** Replaces an adapter's source (resuming: a loaded table by the encoder it came from). */
    void replaceSource(String adapter, PromptSource source) {
        requireAdapter(adapter);
        child("prompt_encoder", ModuleDict.class).put(adapter, source);
    }

    public PromptSource source(String adapter) {
        requireAdapter(adapter);
        return (PromptSource) child("prompt_encoder", ModuleDict.class).get(adapter, true);
    }

    @Override
    protected void removeAdapterState(String adapter) {
        replace("prompt_encoder", child("prompt_encoder", ModuleDict.class).without(adapter));
    }

    @Override
    public Map<String, Parameter> adapterParameters(String adapter) {
        Map<String, Parameter> out = new LinkedHashMap<>();
        if (hasAdapter(adapter)) {
            source(adapter).namedParameters().forEach((k, p) -> out.put("prompt_encoder." + adapter + "." + k, p));
        }
        return out;
    }

    /** The source's parameters; {@code PromptLearningMethod.stateToSave} writes their output instead. */
    @Override
    public Map<String, Parameter> savedTensors(String adapter) {
        return new LinkedHashMap<>(source(adapter).namedParameters());
    }

    @Override
    public Module unwrap(boolean merge) {
        return baseLayer();
    }

    // ---- the word embedding, unchanged ----------------------------------------------------------

    @Override
    public Tensor forward(INDArray ids) {
        return base().forward(ids);
    }

    @Override
    public Parameter weight() {
        return base().weight();
    }

    @Override
    public int numEmbeddings() {
        return base().numEmbeddings();
    }

    @Override
    public int embeddingDim() {
        return base().embeddingDim();
    }

    @Override
    public int paddingIdx() {
        return base().paddingIdx();
    }
}
