package org.peft4j.core.model;

import org.peft4j.core.nn.Module;

import java.util.Set;

/**
 * Takes over parts of a model while a checkpoint loads (e.g. quantizes its linear layers straight
 * from the checkpoint) — the optional hook of {@link ModelFamily#load(java.nio.file.Path, long, LayerLoader)}.
 *
 * <p>A family that {@linkplain ModelFamily#streamsLayers() streams} builds its model one layer at a
 * time and calls this right after each layer is built (with zero placeholder weights), before the
 * next one exists, so the full fp32 model never sits in memory. Any other family calls it once,
 * with prefix {@code ""} and the whole freshly built model. Parameters still in the layer
 * afterwards are filled from the checkpoint as usual.
 */
@FunctionalInterface
public interface LayerLoader {
    /**
     * @param prefix the layer's parameter-name prefix, e.g. {@code "model.layers.3."} ({@code ""} for the whole model)
     * @param layer  the freshly built layer; the loader may {@link Module#replace} its submodules
     * @param source the checkpoint ({@link CheckpointSource#keyFor} resolves a parameter name to its key)
     * @return the checkpoint keys this call consumed (they count as used by the model); null for none
     */
    Set<String> load(String prefix, Module layer, CheckpointSource source);
}
