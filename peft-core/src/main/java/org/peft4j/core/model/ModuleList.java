package org.peft4j.core.model;

import org.peft4j.core.nn.Module;

import java.util.AbstractList;
import java.util.List;

/**
 * An indexed container of child modules named {@code "0"}, {@code "1"}, … (PyTorch's
 * {@code nn.ModuleList}), so that paths read {@code encoder.layer.3.attention…} as in Hugging Face.
 * Children are looked up by name on every access, so {@link Module#replace} works on them.
 */
public class ModuleList<M extends Module> extends Module {
    private final Class<M> type;
    private int size;

    public ModuleList(Class<M> type) {
        this.type = type;
    }

    public ModuleList(Class<M> type, List<? extends M> modules) {
        this(type);
        for (M m : modules) {
            add(m);
        }
    }

    /** Appends {@code m} under the next index. */
    public ModuleList<M> add(M m) {
        registerModule(Integer.toString(size), m);
        size++;
        return this;
    }

    public int size() {
        return size;
    }

    /** The module at index {@code i} (whatever currently sits there, if it is still an {@code M}). */
    public M get(int i) {
        if (i < 0 || i >= size) {
            throw new IndexOutOfBoundsException("index " + i + " outside module list of size " + size);
        }
        return child(Integer.toString(i), type);
    }

    /** A live list view. */
    public List<M> asList() {
        return new AbstractList<>() {
            @Override
            public M get(int index) {
                return ModuleList.this.get(index);
            }

            @Override
            public int size() {
                return size;
            }
        };
    }

    @Override
    protected String describe() {
        return "ModuleList(" + size + ")";
    }
}
