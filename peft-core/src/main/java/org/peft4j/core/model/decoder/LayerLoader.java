package org.peft4j.core.model.decoder;

import org.peft4j.core.nn.Module;

import java.util.Set;

/**
 * Takes over parts of each decoder layer while a checkpoint loads (e.g. quantizes its linear
 * layers straight from the checkpoint), so that the full fp32 model never sits in memory: the
 * model is built one layer at a time and this is called right after each layer is built (with
 * zero placeholder weights), before the next one exists. Parameters still in the layer afterwards
 * are filled from the checkpoint as usual.
 */
@FunctionalInterface
public interface LayerLoader {
    /**
     * @param prefix the layer's parameter-name prefix, e.g. {@code "model.layers.3."}
     * @param layer  the freshly built layer; the loader may {@link Module#replace} its submodules
     * @param source the checkpoint ({@link CheckpointSource#keyFor} resolves a parameter name to its key)
     * @return the checkpoint keys this call consumed (they count as used by the model)
     */
    Set<String> load(String prefix, Module layer, CheckpointSource source);
}
