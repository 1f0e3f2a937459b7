package org.peft4j.adapter;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.nn.PlainResidual;
import org.peft4j.core.nn.ResidualHook;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.peft.BaseAdapterLayer;
import org.peft4j.core.peft.MixedBatch;
import org.peft4j.core.peft.ModuleDict;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The adapter layer in one residual-hook slot of a block ({@link org.peft4j.core.nn.ResidualHookSite}):
 * AdapterHub's {@code BottleneckLayer}, a {@link BaseAdapterLayer} (so {@link org.peft4j.core.peft.PeftModel}
 * switches, disables, deletes, trains, saves and loads its adapters) whose base is the block's own
 * residual step ({@link PlainResidual}, child {@code base_layer}, no parameters). It holds the named
 * {@link BottleneckAdapter}s of that place and the {@link AdapterFusionLayer}s over them, and runs the
 * active one: an adapter, a fusion (AdapterHub's {@code Fuse}), or a {@code Stack} / {@code Average}
 * ({@link Compositions}).
 *
 * <p>Module names are AdapterHub's: in BERT the slot module is itself the adapter dictionary
 * ({@code …output.adapters.<name>.…}) and holds its fusion layers as {@code adapter_fusion_layer}
 * (AdapterHub keeps that dictionary beside it: {@code …output.adapter_fusion_layer.<fusion>.…}, the
 * layout's one key rewrite); in GPT-2 / LLaMA the slot ({@code attention_adapters} /
 * {@code output_adapters}) holds {@code adapters} and {@code adapter_fusion_layer}, as AdapterHub does.
 */
public final class BottleneckLayer extends BaseAdapterLayer implements ResidualHook {
    static final String BASE = "base_layer";
    static final String ADAPTERS = "adapters";
    static final String FUSIONS = "adapter_fusion_layer";

    /** What runs besides a single adapter or fusion: AdapterHub's Stack and Average blocks. */
    enum Mode { ACTIVE, STACK, AVERAGE }

    private final boolean nested;
    private final int hidden;
    private final Map<String, List<String>> fusions = new LinkedHashMap<>();
    private Mode mode = Mode.ACTIVE;
    private List<String> setup = List.of();
    private double[] weights = new double[0];

    BottleneckLayer(boolean nested, int hidden) {
        super(BASE, new PlainResidual());
        this.nested = nested;
        this.hidden = hidden;
        if (nested) {
            registerModule(ADAPTERS, new ModuleDict());
        }
    }

    int hiddenSize() {
        return hidden;
    }

    private Module dict() {
        return nested ? child(ADAPTERS) : this;
    }

    private String adapterPrefix() {
        return nested ? ADAPTERS + "." : "";
    }

    public BottleneckAdapter adapter(String name) {
        Module m = fusions.containsKey(name) ? null : dict().child(name);
        return m instanceof BottleneckAdapter a ? a : null;
    }

    public AdapterFusionLayer fusion(String name) {
        Module d = child(FUSIONS);
        return d == null ? null : (AdapterFusionLayer) d.child(name);
    }

    /** The adapters fusion {@code name} fuses, or null when it is not a fusion held here. */
    List<String> fused(String name) {
        return fusions.get(name);
    }

    void addAdapter(String name, BottleneckAdapter a) {
        if (dict().child(name) != null) {
            throw new IllegalArgumentException("'" + name + "' is already a module of " + describe() + "; choose another adapter name");
        }
        if (nested) {
            ((ModuleDict) dict()).put(name, a);
        } else {
            registerModule(name, a);
        }
        registerAdapter(name);
    }

    void addFusion(String name, List<String> adapters, AdapterFusionLayer f) {
        if (child(FUSIONS) == null) {
            registerModule(FUSIONS, new ModuleDict());
        }
        ((ModuleDict) child(FUSIONS)).put(name, f);
        fusions.put(name, List.copyOf(adapters));
        registerAdapter(name);
    }

    @Override
    protected void removeAdapterState(String name) {
        for (Map.Entry<String, List<String>> f : fusions.entrySet()) {
            if (f.getValue().contains(name)) {
                throw new IllegalStateException("adapter '" + name + "' is fused by '" + f.getKey() + "'; delete the fusion first");
            }
        }
        if (fusions.remove(name) != null) {
            ModuleDict d = ((ModuleDict) child(FUSIONS)).without(name);
            removeModule(FUSIONS);
            registerModule(FUSIONS, d);
        } else if (nested) {
            ModuleDict d = ((ModuleDict) child(ADAPTERS)).without(name);
            removeModule(ADAPTERS);
            registerModule(ADAPTERS, d);
        } else {
            removeModule(name);
        }
    }

    @Override
    public Map<String, Parameter> adapterParameters(String name) {
        Map<String, Parameter> out = new LinkedHashMap<>();
        if (!hasAdapter(name)) {
            return out;
        }
        if (fusions.containsKey(name)) {
            fusion(name).namedParameters().forEach((k, p) -> out.put(FUSIONS + "." + name + "." + k, p));
        } else {
            adapter(name).namedParameters().forEach((k, p) -> out.put(adapterPrefix() + name + "." + k, p));
        }
        return out;
    }

    /** AdapterHub keeps the adapter name in its keys: the saved suffixes are the module paths. */
    @Override
    public Map<String, Parameter> savedTensors(String name) {
        return adapterParameters(name);
    }

    @Override
    public void setActiveAdapters(List<String> adapters) {
        super.setActiveAdapters(adapters);
        mode = Mode.ACTIVE;
        setup = List.of();
    }

    void setComposition(Mode mode, List<String> names, double[] weights) {
        super.setActiveAdapters(names);
        this.mode = mode;
        this.setup = List.copyOf(names);
        this.weights = weights == null ? new double[0] : weights.clone();
    }

    @Override
    public Tensor forward(Tensor out, Tensor residual, UnaryModule norm) {
        if (!adaptersEnabled()) {
            return ResidualHook.plain(out, residual, norm);
        }
        MixedBatch mb = MixedBatch.current();
        if (mb != null) {
            // each row group through its own adapter (or the plain step), as constants: mixed batches are for inference
            INDArray o = null;
            for (Map.Entry<String, int[]> g : mb.groups(out.size(0)).entrySet()) {
                Tensor os = Tensor.constant(MixedBatch.selectRows(out.value(), g.getValue()));
                Tensor rs = Tensor.constant(MixedBatch.selectRows(residual.value(), g.getValue()));
                Tensor y = hasAdapter(g.getKey()) ? run(g.getKey(), os, rs, norm) : ResidualHook.plain(os, rs, norm);
                if (o == null) {
                    o = Nd4j.createUninitialized(y.value().dataType(), out.shape(), 'c');
                }
                MixedBatch.putRows(o, g.getValue(), y.value());
            }
            return Tensor.constant(o);
        }
        if (mode == Mode.STACK) {
            return stack(setup, out, residual, norm);
        }
        if (mode == Mode.AVERAGE) {
            return average(out, residual, norm);
        }
        List<String> held = new ArrayList<>();
        for (String a : activeAdapters()) {
            if (hasAdapter(a)) {
                held.add(a);
            }
        }
        if (held.isEmpty()) {        // none active, or none of this name here (leave_out, mh_adapter false)
            return ResidualHook.plain(out, residual, norm);
        }
        return held.size() == 1 ? run(held.get(0), out, residual, norm) : stack(held, out, residual, norm);
    }

    private Tensor run(String name, Tensor out, Tensor residual, UnaryModule norm) {
        if (fusions.containsKey(name)) {
            return fuse(name, out, residual, norm);
        }
        return adapter(name).forward(out, residual, norm);
    }

    /**
     * AdapterHub's {@code compose_fuse}: the last fused adapter's {@code pre_forward} (with the
     * fusion's query), every fused adapter's up-projection on its input, the fusion layer over them,
     * the last adapter's {@code post_forward}.
     */
    private Tensor fuse(String name, Tensor out, Tensor residual, UnaryModule norm) {
        List<String> names = fusions.get(name);
        AdapterFusionLayer f = fusion(name);
        BottleneckAdapter last = adapter(names.get(names.size() - 1));
        Tensor[] xr = last.pre(out, residual, norm);
        Tensor query = last.query(out, residual, xr[0], f.config().queryBeforeLn());
        List<Tensor> ups = new ArrayList<>();
        for (String n : names) {
            ups.add(adapter(n).up(xr[0]));
        }
        return last.post(f.forward(query, ups, xr[1]), out, residual, norm);
    }

    /** compose_stack: each adapter's pre_forward on the previous adapter's output, the last one's post_forward. */
    private Tensor stack(List<String> names, Tensor out, Tensor residual, UnaryModule norm) {
        Tensor h = out;
        BottleneckAdapter last = null;
        for (String n : names) {
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

    /**
     * compose_average: the first held adapter's pre_forward, every adapter on it, AdapterHub's
     * {@code torch.mean(stack(outputs) * weights, 0)} = Σ wᵢ·oᵢ / n (weights normalised to sum 1),
     * the last one's post_forward.
     */
    private Tensor average(Tensor out, Tensor residual, UnaryModule norm) {
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
            Tensor o = Ops.mul(a.body(xr[0], xr[1]), weights[i]);
            sum = sum == null ? o : Ops.add(sum, o);
            last = a;
            n++;
        }
        return last.post(Ops.mul(sum, 1.0 / n), out, residual, norm);
    }

    @Override
    protected String describe() {
        return "BottleneckLayer(" + describeAdapters() + (mode == Mode.ACTIVE ? "" : ", " + mode + " " + setup) + ")";
    }
}
