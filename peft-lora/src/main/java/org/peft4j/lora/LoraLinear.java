package org.peft4j.lora;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.LinearLayer;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.peft.ModuleDict;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.Map;

/**
 * LoRA around a {@link LinearLayer} (PEFT's {@code lora.Linear}; QLoRA when the base is quantized):
 * {@code y = base(x) + Σ_active s·B·A·dropout(x)}, or with DoRA
 * {@code y = base(x) + (m/‖W + s·B·A‖_row − 1)⊙(W·dropout(x)) + (m/‖W + s·B·A‖_row)⊙(s·B·A·dropout(x))}.
 *
 * <p>Children, named as in PEFT: {@code base_layer} (the frozen original), {@code lora_A.<adapter>}
 * ({@link Linear} {@code in → r}, weight {@code [r, in]}), {@code lora_B.<adapter>} ({@code r → out},
 * weight {@code [out, r]}) and, for DoRA, {@code lora_magnitude_vector.<adapter>} (weight {@code [out]}).
 * GPT-2's {@code Conv1D} ({@link LinearLayer#isFanInFanOut()}, weight {@code [in, out]}) takes the same
 * factors; only merging and weight-based initializations see the base weight, always as {@code [out, in]}.
 *
 * <p>Dropout applies to the LoRA branch only, in training mode.
 */
public class LoraLinear extends LoraLayer implements UnaryModule {
    static final String A = "lora_A";
    static final String B = "lora_B";
    static final String MAGNITUDE = "lora_magnitude_vector";

    private final int inFeatures;
    private final int outFeatures;
    private final boolean fanInFanOut;

    /** DoRA's magnitude vector, a module with one parameter {@code weight [out]} (PEFT's {@code DoraLinearLayer}). */
    public static final class DoraMagnitude extends Module {
        DoraMagnitude(INDArray m) {
            registerParameter("weight", new Parameter(m));
        }

        public Parameter weight() {
            return parameter("weight");
        }
    }

    /** Wraps a {@link LinearLayer} ({@link Linear}, a quantized linear layer, ...). */
    public LoraLinear(Module base) {
        super(requireLinear(base), A, B, ".weight");
        LinearLayer l = (LinearLayer) base;
        inFeatures = l.inFeatures();
        outFeatures = l.outFeatures();
        fanInFanOut = l.isFanInFanOut();
        registerModule(A, new ModuleDict());
        registerModule(B, new ModuleDict());
        registerModule(MAGNITUDE, new ModuleDict());
    }

    private static Module requireLinear(Module base) {
        if (!(base instanceof LinearLayer)) {
            throw new IllegalArgumentException("LoraLinear wraps a LinearLayer, got " + (base == null ? "null" : base.getClass().getName()));
        }
        return base;
    }

    public int inFeatures() {
        return inFeatures;
    }

    public int outFeatures() {
        return outFeatures;
    }

    @Override
    public int deltaIn() {
        return inFeatures;
    }

    @Override
    public int deltaOut() {
        return outFeatures;
    }

    /** True when the base weight is stored {@code [in, out]} (GPT-2 Conv1D). */
    public boolean isFanInFanOut() {
        return fanInFanOut;
    }

    private LinearLayer linear() {
        return (LinearLayer) baseLayer();
    }

    private ModuleDict dict(String name) {
        return child(name, ModuleDict.class);
    }

    /** The base weight as {@code [out, in]} (the live weight of a Linear, a dense copy of a quantized one). */
    INDArray baseWeightOutIn() {
        return linear().denseWeight();
    }

    /** Stores {@code w [out, in]} as the base weight (in place, so tied users see it). */
    void setBaseWeightOutIn(INDArray w) {
        linear().setDenseWeight(w);
    }

    // ---- adapters -------------------------------------------------------------------------------

    /**
     * Adds adapter {@code name} with rank {@code r}, the given alpha and dropout, initialized per
     * {@code init} (see {@link LoraConfig#initLoraWeights()}). With {@code forLoading} the factors
     * start at zero and the base weight is never touched (values come from a file next).
     */
    public void addAdapter(String name, int r, int alpha, double dropout, boolean rslora, boolean dora, String init,
                           Rng initRng, Rng dropoutRng, boolean forLoading) {
        checkRank(r);
        if (hasAdapter(name)) {
            throw new IllegalArgumentException("LoRA adapter '" + name + "' already exists in this layer");
        }
        double scaling = LoraConfig.scaling(alpha, r, rslora);
        DataType dt = linear().weightDataType();
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
        addSettings(name, new Settings(r, alpha, scaling, dropout, rslora, dora), dropoutRng);
        putFactors(name, a, b);
        if (dora) {
            INDArray norm = LoraOps.doraWeightNorm(baseWeightOutIn().castTo(dt), a, b, scaling);
            dict(MAGNITUDE).put(name, new DoraMagnitude(norm.castTo(dt).reshape(outFeatures)));
        }
    }

    @Override
    protected Parameter factor(String dict, String adapter) {
        return ((Linear) dict(dict).get(adapter, true)).weight();
    }

    @Override
    protected void putFactors(String adapter, INDArray a, INDArray b) {
        DataType dt = linear().weightDataType();
        dict(A).put(adapter, new Linear(a.castTo(dt).dup('c'), null, false));
        dict(B).put(adapter, new Linear(b.castTo(dt).dup('c'), null, false));
    }

    @Override
    protected void removeEntries(String adapter) {
        replace(A, dict(A).without(adapter));
        replace(B, dict(B).without(adapter));
        replace(MAGNITUDE, dict(MAGNITUDE).without(adapter));
    }

    /** DoRA's magnitude vector {@code [out]} of an adapter, or null when it is not a DoRA adapter. */
    public Parameter magnitude(String adapter) {
        Module m = dict(MAGNITUDE).get(adapter, false);
        return m == null ? null : ((DoraMagnitude) m).weight();
    }

    @Override
    public Map<String, Parameter> adapterParameters(String adapter) {
        Map<String, Parameter> out = super.adapterParameters(adapter);
        Parameter m = hasAdapter(adapter) ? magnitude(adapter) : null;
        if (m != null) {
            out.put(MAGNITUDE + "." + adapter + ".weight", m);
        }
        return out;
    }

    @Override
    public Map<String, Parameter> savedTensors(String adapter) {
        Map<String, Parameter> out = super.savedTensors(adapter);
        Parameter m = magnitude(adapter);
        if (m != null) {
            out.put(MAGNITUDE, m);
        }
        return out;
    }

    // ---- forward ----------------------------------------------------------------------------------

    @Override
    public Tensor forward(Tensor x) {
        UnaryModule base = linear();
        return adaptedForward(() -> base.forward(x), () -> x.size(0), (result, name, rows) -> branch(result, x, name, rows));
    }

    private Tensor branch(Tensor result, Tensor x, String name, int[] rows) {
        Settings s = settings(name);
        Rng rng = dropoutRng(name);
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

    /** {@code W ← W + s·B·A} (DoRA: {@code W ← (m / ‖W + s·B·A‖_row) ⊙ (W + s·B·A)}); returns W from before. */
    @Override
    protected INDArray mergeAdapter(String name) {
        INDArray w = baseWeightOutIn().dup('c');                    // [out, in], kept for unmerge
        INDArray delta = deltaWeight(name).castTo(w.dataType());
        INDArray merged = w.add(delta);
        if (settings(name).dora()) {
            INDArray norm = merged.norm2(1);
            INDArray factor = magnitude(name).value().reshape(outFeatures).castTo(w.dataType()).div(norm);
            merged.muliColumnVector(factor.reshape(outFeatures, 1));
        }
        if (merged.isNaN().any() || merged.isInfinite().any()) { // PEFT's safe_merge check
            throw new IllegalStateException("merging adapter '" + name + "' gives non-finite weights");
        }
        setBaseWeightOutIn(merged);
        return w;
    }

    @Override
    protected void restoreMerged(String adapter, INDArray previous) {
        setBaseWeightOutIn(previous);
    }

    @Override
    protected String describe() {
        return "LoraLinear(" + inFeatures + " -> " + outFeatures + ", " + describeAdapters() + ")";
    }
}
