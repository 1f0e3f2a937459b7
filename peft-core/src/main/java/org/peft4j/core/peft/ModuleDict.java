package org.peft4j.core.peft;

import org.peft4j.core.nn.Module;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A plain container of named child modules (PyTorch's {@code nn.ModuleDict}), used to hold one
 * module per adapter name so parameter names read {@code lora_A.<adapter>.weight} as in PEFT.
 * Removing an entry builds a new dict (the parent swaps it in with {@link Module#replace}).
 */
public class ModuleDict extends Module {

    public ModuleDict() {
    }

    public ModuleDict(Map<String, ? extends Module> entries) {
        entries.forEach(this::put);
    }

    public <M extends Module> M put(String name, M module) {
        return registerModule(name, module);
    }

    public boolean containsKey(String name) {
        return child(name) != null;
    }

    public Module get(String name, boolean required) {
        Module m = child(name);
        if (m == null && required) {
            throw new IllegalArgumentException("no entry '" + name + "' (entries: " + children().keySet() + ")");
        }
        return m;
    }

    /** A new dict with every entry but {@code name}. */
    public ModuleDict without(String name) {
        Map<String, Module> rest = new LinkedHashMap<>(children());
        rest.remove(name);
        ModuleDict d = new ModuleDict(rest);
        if (!isTraining()) {
            d.eval();
        }
        return d;
    }

    public int size() {
        return children().size();
    }
}
