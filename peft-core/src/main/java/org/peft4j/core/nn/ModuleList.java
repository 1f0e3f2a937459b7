package org.peft4j.core.nn;

import java.util.ArrayList;
import java.util.List;

/**
 * An indexed list of child modules named {@code "0"}, {@code "1"}, … (PyTorch's
 * {@code nn.ModuleList}), so parameter names read {@code encoder.layer.3.attention…}. Entries are
 * looked up by name at every access, so {@link #replace} on a path through the list takes effect.
 */
public class ModuleList extends Module {
    private int size;

    public ModuleList() {
    }

    public ModuleList(List<? extends Module> modules) {
        for (Module m : modules) {
            add(m);
        }
    }

    /** Appends {@code m} under the next index and returns it. */
    public <M extends Module> M add(M m) {
        if (m == null) {
            throw new IllegalArgumentException("ModuleList entries must not be null (index " + size + ")");
        }
        registerModule(Integer.toString(size), m);
        size++;
        return m;
    }

    /** The module at {@code index} (the current one, after any replacement). */
    public Module get(int index) {
        if (index < 0 || index >= size) {
            throw new IndexOutOfBoundsException("ModuleList index " + index + " out of range [0, " + size + ")");
        }
        return child(Integer.toString(index));
    }

    /** The module at {@code index}, cast to {@code type}. */
    public <T> T get(int index, Class<T> type) {
        if (index < 0 || index >= size) {
            throw new IndexOutOfBoundsException("ModuleList index " + index + " out of range [0, " + size + ")");
        }
        return child(Integer.toString(index), type);
    }

    public int size() {
        return size;
    }

    /** The entries in index order. */
    public List<Module> modules() {
        List<Module> out = new ArrayList<>(size);
        for (int i = 0; i < size; i++) {
            out.add(get(i));
        }
        return out;
    }
}
