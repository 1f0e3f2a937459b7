package org.peft4j.lora;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.AdapterLayer;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A layer carrying LoRA adapters around a base layer ({@link LoraLinear}, {@link LoraEmbedding}).
 * For every adapter it holds factors A {@code [r, in]} and B {@code [out, r]} (an embedding: A
 * {@code [r, vocab]}, B {@code [dim, r]}), so {@code ΔW = s·B·A} has the shape {@code [out, in]}
 * in both cases ({@code [dim, vocab]} for an embedding, whose table is its transpose).
 */
public interface LoraLayer extends AdapterLayer {

    /** The per-adapter hyper-parameters. */
    record Settings(int r, int alpha, double scaling, double dropout, boolean rslora, boolean dora) {
    }

    @Override
    Set<String> adapterNames();

    Settings settings(String adapter);

    /** The adapters used by forward passes (usually one). */
    List<String> activeAdapters();

    void setActiveAdapters(List<String> adapters);

    /** With {@code false} the layer computes exactly its base layer (merged adapters are unmerged first). */
    void setAdaptersEnabled(boolean enabled);

    boolean adaptersEnabled();

    boolean isMerged();

    List<String> mergedAdapters();

    /** Folds the named adapters (those this layer has) into the base weight. */
    void merge(List<String> adapters);

    /** Restores the exact base weight from before {@link #merge} (bit for bit), undoing merges newest first. */
    void unmerge();

    void deleteAdapter(String adapter);

    /** Factor A of an adapter ({@code [r, in]}). */
    Parameter loraA(String adapter);

    /** Factor B of an adapter ({@code [out, r]}). */
    Parameter loraB(String adapter);

    /** {@code s·B·A} ({@code [out, in]}, fp32 copy). */
    INDArray deltaWeight(String adapter);

    /** The adapter's parameters under names relative to this layer (PEFT's in-memory names). */
    Map<String, Parameter> adapterParameters(String adapter);

    /** The adapter's tensors under the key suffixes PEFT saves ({@code lora_A.weight}, ...). */
    Map<String, Parameter> savedTensors(String adapter);

    /**
     * Adds an adapter with given factors and scaling 1 (alpha = r), e.g. a weighted combination of
     * others; its dropout is {@code dropout}.
     */
    void addAdapterFromFactors(String adapter, INDArray a, INDArray b, double dropout);

    /** The module that replaces this layer when adapters are unloaded. */
    Module unwrap();
}
