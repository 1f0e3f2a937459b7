package org.peft4j.adapter;

import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.ResidualHook;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.peft.ModuleDict;
import org.peft4j.core.tensor.Tensor;

import java.util.LinkedHashSet;
import java.util.Set;

/**
 * The {@link ResidualHook} in one slot of a block: AdapterHub's {@code BottleneckLayer}, holding the
 * named {@link BottleneckAdapter}s of that place and running the active one. In BERT the slot module
 * is itself the dictionary ({@code …output.adapters.<name>.…}); in GPT-2 / LLaMA the slot
 * ({@code attention_adapters} / {@code output_adapters}) holds a child {@code adapters}
 * ({@code …attention_adapters.adapters.<name>.…}), as in AdapterHub's state dicts.
 */
public final class BottleneckLayer extends Module implements ResidualHook {
    private final boolean nested;
    private String active;

    BottleneckLayer(boolean nested) {
        this.nested = nested;
        if (nested) {
            registerModule("adapters", new ModuleDict());
        }
    }

    private Module dict() {
        return nested ? child("adapters") : this;
    }

    /** Names of the adapters held here, in insertion order. */
    public Set<String> adapterNames() {
        return new LinkedHashSet<>(dict().children().keySet());
    }

    public BottleneckAdapter adapter(String name) {
        Module m = dict().child(name);
        return m instanceof BottleneckAdapter a ? a : null;
    }

    void add(String name, BottleneckAdapter a) {
        if (dict().child(name) != null) {
            throw new IllegalArgumentException("adapter '" + name + "' already exists here");
        }
        if (nested) {
            ((ModuleDict) dict()).put(name, a);
        } else {
            registerModule(name, a);
        }
    }

    /** The adapter that runs (null: none, the block's own residual step). */
    public String active() {
        return active;
    }

    void setActive(String name) {
        this.active = name;
    }

    @Override
    public Tensor forward(Tensor out, Tensor residual, UnaryModule norm) {
        BottleneckAdapter a = active == null ? null : adapter(active);
        if (a == null) {    // no adapter of this name at this place (leave_out, mh_adapter false) or none active
            return ResidualHook.plain(out, residual, norm);
        }
        return a.forward(out, residual, norm);
    }

    @Override
    protected String describe() {
        return "BottleneckLayer(adapters=" + adapterNames() + ", active=" + active + ")";
    }
}
