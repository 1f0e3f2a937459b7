package org.peft4j.core.model.decoder;

import org.peft4j.core.nn.Module;

import java.util.List;

/**
 * An indexed container like PyTorch's {@code nn.ModuleList}: children are named {@code "0"},
 * {@code "1"}, …, so a block's parameters get Hugging Face names such as
 * {@code transformer.h.3.attn.c_attn.weight} or {@code model.layers.3.mlp.up_proj.weight}.
 */
public final class ModuleList<M extends Module> extends Module {
    private final Class<M> type;
    private int size;

    public ModuleList(Class<M> type, List<? extends M> modules) {
        this.type = type;
        for (M m : modules) {
            registerModule(Integer.toString(size++), m);
        }
    }

    public int size() {
        return size;
    }

    /** The module at {@code index}, looked up by name so a replaced child is seen. */
    public M get(int index) {
        if (index < 0 || index >= size) {
            throw new IndexOutOfBoundsException("index " + index + " outside [0, " + size + ")");
        }
        return child(Integer.toString(index), type);
    }

    @Override
    protected String describe() {
        return "ModuleList(" + size + " x " + type.getSimpleName() + ")";
    }
}
