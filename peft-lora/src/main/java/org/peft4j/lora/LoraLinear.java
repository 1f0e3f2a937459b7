package org.peft4j.lora;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.peft.ModuleDict;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * LoRA around a linear layer (PEFT's {@code lora.Linear}):
 * {@code y = base(x) + Σ_active s·B·A·dropout(x)}, or with DoRA
 * {@code y = base(x) + (m/‖W + s·B·A‖_row − 1)⊙(W·dropout(x)) + (m/‖W + s·B·A‖_row)⊙(s·B·A·dropout(x))}.
 *
 * <p>Children, named as in PEFT: {@code base_layer} (the frozen original), {@code lora_A.<adapter>}
 * ({@link Linear} {@code in → r}, weight {@code [r, in]}), {@code lora_B.<adapter>} ({@code r → out},
 * weight {@code [out, r]}) and, for DoRA, {@code lora_magnitude_vector.<adapter>} (weight {@code [out]}).
 * GPT-2's {@code Conv1D} ({@link Linear#isFanInFanOut()}, weight {@code [in, out]}) takes the same
 * factors; only merging and weight-based initializations transpose.
 *
 * <p>Dropout applies to the LoRA branch only, in training mode.
 */
public class LoraLinear extends Module implements LoraLayer, UnaryModule {
    static final String BASE = "base_layer";
    static final String A = "lora_A";
    static final String B = "lora_B";
    static final String MAGNITUDE = "lora_magnitude_vector";

    private final int inFeatures;
    private final int outFeatures;
    private final boolean fanInFanOut;
    private final AdapterBook book = new AdapterBook();

    /** DoRA's magnitude vector, a module with one parameter {@code weight [out]} (PEFT's {@code DoraLinearLayer}). */
    public static final class DoraMagnitude extends Module {
        DoraMagnitude(INDArray m) {
            registerParameter("weight", new Parameter(m));
        }

        public Parameter weight() {
            return parameter("weight");
        }
    }

    /** Wraps a {@link Linear} or a {@link LoraBaseLinear}. */
    public LoraLinear(Module base) {
        if (base instanceof Linear l) {
            inFeatures = l.inFeatures();
            outFeatures = l.outFeatures();
            fanInFanOut = l.isFanInFanOut();
        } else if (base instanceof LoraBaseLinear l) {
            inFeatures = l.inFeatures();
            outFeatures = l.outFeatures();
            fanInFanOut = false;
        } else {
            throw new IllegalArgumentException("LoraLinear wraps a Linear or a LoraBaseLinear, got " + base.getClass().getName());
        }
        registerModule(BASE, base);
        registerModule(A, new ModuleDict());
        registerModule(B, new ModuleDict());
        registerModule(MAGNITUDE, new ModuleDict());
        if (!base.isTraining()) {
            eval();
        }
    }

    public int inFeatures() {
        return inFeatures;
    }

    public int outFeatures() {
        return outFeatures;
    }

    /** True when the base weight is stored {@code [in, out]} (GPT-2 Conv1D). */
    public boolean isFanInFanOut() {
        return fanInFanOut;
    }

    @Override
    public Module baseLayer() {
        return child(BASE);
    }

    @Override
    public Module unwrap() {
        return baseLayer();
    }

    private ModuleDict dict(String name) {
        return child(name, ModuleDict.class);
    }

    // ---- base weight access ---------------------------------------------------------------------

    /** The base weight as {@code [out, in]} (a view for a Linear, a dense copy for other bases). */
    INDArray baseWeightOutIn() {
        Module base = baseLayer();
        if (base instanceof Linear l) {
            INDArray w = l.weight().value();
            return fanInFanOut ? w.transpose() : w;
        }
        return ((LoraBaseLinear) base).denseWeight();
    }

    /** Stores {@code w [out, in]} as the base weight. */
    void setBaseWeightOutIn(INDArray w) {
        Module base = baseLayer();
        if (base instanceof Linear l) {
            // in place, so anything sharing the weight array (tied heads) sees the change
            Parameter p = l.weight();
            INDArray v = fanInFanOut ? w.transpose() : w;
            p.value().assign(v.castTo(p.value().dataType()));
        } else {
            ((LoraBaseLinear) base).setDenseWeight(w.castTo(DataType.FLOAT).dup('c'));
        }
    }

    private DataType paramType() {
        Module base = baseLayer();
        return base instanceof Linear l ? l.weight().value().dataType() : DataType.FLOAT;
    }

    // ---- adapters -------------------------------------------------------------------------------

    /**
     * Adds adapter {@code name} with rank {@code r}, the given alpha and dropout, initialized per
     * {@code init} (see {@link LoraConfig#initLoraWeights()}). With {@code forLoading} the factors
     * start at zero and the base weight is never touched (values come from a file next).
     */
    public void addAdapter(String name, int r, int alpha, double dropout, boolean rslora, boolean dora, String init,
                           Rng initRng, Rng dropoutRng, boolean forLoading) {
        AdapterBook.checkRank(r);
        double scaling = LoraConfig.scaling(alpha, r, rslora);
        DataType dt = paramType();
        INDArray a;
        INDArray b;
        if (forLoading) {
            a = Nd4j.zeros(dt, r, inFeatures);
            b = Nd4j.zeros(dt, outFeatures, r);
        } else {
            INDArray[] ab = LoraInit.linearFactors(this, init, r, scaling, initRng, dt);
            a = ab[0];
            b = ab[1];
        }
        book.add(name, new Settings(r, alpha, scaling, dropout, rslora, dora), dropoutRng);
        dict(A).put(name, new Linear(a, null, false));
        dict(B).put(name, new Linear(b, null, false));
        if (dora) {
            INDArray norm = LoraOps.doraWeightNorm(baseWeightOutIn().castTo(dt), a, b, scaling);
            dict(MAGNITUDE).put(name, new DoraMagnitude(norm.castTo(dt).reshape(outFeatures)));
        }
    }

    @Override
    public void addAdapterFromFactors(String name, INDArray a, INDArray b, double dropout) {
        int r = AdapterBook.factorRank(this, a, b, inFeatures, outFeatures);
        DataType dt = paramType();
        book.add(name, new Settings(r, r, 1.0, dropout, false, false), null);
        book.dropoutRngs.put(name, dropout > 0 ? new Rng(name.hashCode() * 0x9E3779B97F4A7C15L) : null);
        dict(A).put(name, new Linear(a.castTo(dt).dup('c'), null, false));
        dict(B).put(name, new Linear(b.castTo(dt).dup('c'), null, false));
    }

    @Override
    public Set<String> adapterNames() {
        return book.names();
    }

    @Override
    public Settings settings(String adapter) {
        return book.get(adapter);
    }

    @Override
    public List<String> activeAdapters() {
        return List.copyOf(book.active);
    }

    @Override
    public void setActiveAdapters(List<String> adapters) {
        book.active.clear();
        book.active.addAll(adapters);
    }

    @Override
    public void setAdaptersEnabled(boolean enabled) {
        book.setEnabled(enabled, this);
    }

    @Override
    public boolean adaptersEnabled() {
        return book.enabled;
    }

    @Override
    public Parameter loraA(String adapter) {
        book.get(adapter);
        return ((Linear) dict(A).get(adapter, true)).weight();
    }

    @Override
    public Parameter loraB(String adapter) {
        book.get(adapter);
        return ((Linear) dict(B).get(adapter, true)).weight();
    }

    /** DoRA's magnitude vector {@code [out]} of an adapter, or null when it is not a DoRA adapter. */
    public Parameter magnitude(String adapter) {
        Module m = dict(MAGNITUDE).get(adapter, false);
        return m == null ? null : ((DoraMagnitude) m).weight();
    }

    @Override
    public Map<String, Parameter> adapterParameters(String adapter) {
        Map<String, Parameter> out = new LinkedHashMap<>();
        if (!book.settings.containsKey(adapter)) {
            return out;
        }
        out.put(A + "." + adapter + ".weight", loraA(adapter));
        out.put(B + "." + adapter + ".weight", loraB(adapter));
        Parameter m = magnitude(adapter);
        if (m != null) {
            out.put(MAGNITUDE + "." + adapter + ".weight", m);
        }
        return out;
    }

    @Override
    public Map<String, Parameter> savedTensors(String adapter) {
        Map<String, Parameter> out = new LinkedHashMap<>();
        out.put(A + ".weight", loraA(adapter));
        out.put(B + ".weight", loraB(adapter));
        Parameter m = magnitude(adapter);
        if (m != null) {
            out.put(MAGNITUDE, m);
        }
        return out;
    }

    @Override
    public void deleteAdapter(String adapter) {
        if (!book.settings.containsKey(adapter)) {
            return;
        }
        book.remove(adapter);
        replace(A, dict(A).without(adapter));
        replace(B, dict(B).without(adapter));
        replace(MAGNITUDE, dict(MAGNITUDE).without(adapter));
    }

    // ---- forward ----------------------------------------------------------------------------------

    @Override
    public Tensor forward(Tensor x) {
        UnaryModule base = (UnaryModule) baseLayer();
        return book.forward(this, () -> base.forward(x), () -> x.size(0), (result, name, rows) -> branch(result, x, name, rows));
    }

    private Tensor branch(Tensor result, Tensor x, String name, int[] rows) {
        Settings s = book.get(name);
        Rng rng = book.dropoutRngs.get(name);
        if (s.dora()) {
            INDArray w = baseWeightOutIn();
            if (fanInFanOut) {
                w = w.dup('c');
            }
            return LoraOps.doraAdd(result, x, w, loraA(name), loraB(name), magnitude(name), s.scaling(), s.dropout(),
                    isTraining(), rng, rows);
        }
        return LoraOps.loraAdd(result, x, loraA(name), loraB(name), s.scaling(), s.dropout(), isTraining(), rng, rows);
    }

    // ---- merging ----------------------------------------------------------------------------------

    @Override
    public INDArray deltaWeight(String adapter) {
        Settings s = book.get(adapter);
        return AdapterBook.delta(loraA(adapter).value(), loraB(adapter).value(), s.scaling(), outFeatures, inFeatures);
    }

    @Override
    public boolean isMerged() {
        return book.anyMerged();
    }

    @Override
    public List<String> mergedAdapters() {
        return book.mergedNames();
    }

    @Override
    public void merge(List<String> adapters) {
        for (String name : adapters) {
            if (!book.settings.containsKey(name) || book.isMerged(name)) {
                continue;
            }
            INDArray w = baseWeightOutIn().dup('c');                    // [out, in], kept for unmerge
            INDArray delta = deltaWeight(name).castTo(w.dataType());
            INDArray merged = w.add(delta);
            if (book.get(name).dora()) {
                // W' = (m / ‖W + ΔW‖_row) ⊙ (W + ΔW)
                INDArray norm = merged.norm2(1);
                INDArray factor = magnitude(name).value().reshape(outFeatures).castTo(w.dataType()).div(norm);
                merged.muliColumnVector(factor.reshape(outFeatures, 1));
            }
            if (merged.isNaN().any() || merged.isInfinite().any()) { // PEFT's safe_merge check
                throw new IllegalStateException("merging adapter '" + name + "' gives non-finite weights");
            }
            setBaseWeightOutIn(merged);
            book.merged.add(new AdapterBook.MergeRecord(name, w));
        }
    }

    @Override
    public void unmerge() {
        while (!book.merged.isEmpty()) {
            AdapterBook.MergeRecord m = book.merged.remove(book.merged.size() - 1);
            setBaseWeightOutIn(m.previousWeight());   // newest first: back to the exact pre-merge weight
        }
    }

    @Override
    protected String describe() {
        return "LoraLinear(" + inFeatures + " -> " + outFeatures + ", " + book.describe() + ")";
    }

    /** The first {@code r} columns of {@code a} (helper for inits). */
    static INDArray firstColumns(INDArray a, long r) {
        return a.get(NDArrayIndex.all(), NDArrayIndex.interval(0, r)).dup('c');
    }

    static List<String> copyOf(List<String> l) {
        return new ArrayList<>(l);
    }
}
