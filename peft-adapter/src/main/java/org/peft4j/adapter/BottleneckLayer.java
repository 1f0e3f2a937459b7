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
    /** What runs: one adapter, a Stack or an Average (AdapterHub's composition blocks). */
    enum Mode { SINGLE, STACK, AVERAGE }

    private Mode mode = Mode.SINGLE;
    private String active;
    private java.util.List<String> setup = java.util.List.of();
    private double[] weights = new double[0];

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
        this.mode = Mode.SINGLE;
        this.active = name;
        this.setup = name == null ? java.util.List.of() : java.util.List.of(name);
    }

    void setComposition(Mode mode, java.util.List<String> names, double[] weights) {
        this.mode = mode;
        this.setup = java.util.List.copyOf(names);
        this.weights = weights == null ? new double[0] : weights.clone();
        this.active = names.get(0);
    }

    @Override
    public Tensor forward(Tensor out, Tensor residual, UnaryModule norm) {
        if (mode == Mode.SINGLE) {
            BottleneckAdapter a = active == null ? null : adapter(active);
            if (a == null) {    // no adapter of this name at this place (leave_out, mh_adapter false) or none active
                return ResidualHook.plain(out, residual, norm);
            }
            return a.forward(out, residual, norm);
        }
        if (mode == Mode.STACK) {
            // compose_stack: each adapter's pre_forward on the previous adapter's output, the last one's post_forward
            Tensor h = out;
            BottleneckAdapter last = null;
            for (String n : setup) {
                BottleneckAdapter a = adapter(n);
                if (a == null) {
                    continue;
                }
                Tensor[] xr = a.pre(h, residual, norm);
                h = a.body(xr[0], xr[1]);
                last = a;
            }
            return last == null ? ResidualHook.plain(out, residual, norm) : last.post(h, out, residual, norm);
        }
        // compose_average: the first adapter's pre_forward, every adapter on it, AdapterHub's
        // torch.mean(stack(outputs) * weights, 0) = Σ wᵢ·oᵢ / n (weights normalised to sum 1), the last one's post_forward
        // the first of the adapters held at this place (one of a mh_adapter-less pair may be absent here)
        BottleneckAdapter first = null;
        for (String n : setup) {
            if (first == null) {
                first = adapter(n);
            }
        }
        if (first == null) {
            return ResidualHook.plain(out, residual, norm);
        }
        Tensor[] xr = first.pre(out, residual, norm);
        Tensor sum = null;
        BottleneckAdapter last = null;
        int n = 0;
        for (int i = 0; i < setup.size(); i++) {
            BottleneckAdapter a = adapter(setup.get(i));
            if (a == null) {
                continue;
            }
            Tensor o = org.peft4j.core.tensor.Ops.mul(a.body(xr[0], xr[1]), weights[i]);
            sum = sum == null ? o : org.peft4j.core.tensor.Ops.add(sum, o);
            last = a;
            n++;
        }
        return last.post(org.peft4j.core.tensor.Ops.mul(sum, 1.0 / n), out, residual, norm);
    }

    @Override
    protected String describe() {
        return "BottleneckLayer(adapters=" + adapterNames() + ", " + mode + " " + setup + ")";
    }
}
