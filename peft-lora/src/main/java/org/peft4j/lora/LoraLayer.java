package org.peft4j.lora;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.BaseAdapterLayer;
import org.peft4j.core.tensor.Rng;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A layer carrying LoRA adapters around a base layer ({@link LoraLinear}, {@link LoraEmbedding}):
 * what both share on top of the core {@link BaseAdapterLayer} (active adapters, enabling,
 * merge records, mixed-batch dispatch). For every adapter it holds factors A {@code [r, in]} and
 * B {@code [out, r]} (an embedding: A {@code [r, vocab]}, B {@code [dim, r]}), so
 * {@code ΔW = s·B·A} has the shape {@code [out, in]} in both cases ({@code [dim, vocab]} for an
 * embedding, whose table is its transpose).
 *
 * <p>The factors live in two children named as in PEFT ({@code lora_A} / {@code lora_B}, or
 * {@code lora_embedding_A} / {@code lora_embedding_B}); each layer type says how an entry holds
 * its tensor ({@link #factor}, {@link #putFactors}).
 */
public abstract class LoraLayer extends BaseAdapterLayer {
    static final String BASE = "base_layer";

    /** The per-adapter hyper-parameters. */
    public record Settings(int r, int alpha, double scaling, double dropout, boolean rslora, boolean dora) {
    }

    private final Map<String, Settings> settings = new LinkedHashMap<>();
    private final Map<String, Rng> dropoutRngs = new LinkedHashMap<>();
    private final String aName;
    private final String bName;
    /** What follows an entry's name in its parameter's name: {@code ".weight"} for a Linear entry, none for a bare parameter. */
    private final String entrySuffix;

    protected LoraLayer(Module base, String aName, String bName, String entrySuffix) {
        super(BASE, base);
        this.aName = aName;
        this.bName = bName;
        this.entrySuffix = entrySuffix;
    }

    /** Inputs of the delta {@code [out, in]} (a linear layer's in-features, an embedding's vocabulary). */
    public abstract int deltaIn();

    /** Outputs of the delta {@code [out, in]} (a linear layer's out-features, an embedding's dimension). */
    public abstract int deltaOut();

    /** The tensor of entry {@code adapter} of factor child {@code dict} ({@code lora_A}, ...). */
    protected abstract Parameter factor(String dict, String adapter);

    /** Stores the factors {@code a [r, in]}, {@code b [out, r]} of a new adapter. */
    protected abstract void putFactors(String adapter, INDArray a, INDArray b);

    /** Drops the factor (and other) entries of {@code adapter}. */
    protected abstract void removeEntries(String adapter);

    static void checkRank(int r) {
        if (r <= 0) {
            throw new IllegalArgumentException("LoRA rank must be positive, got " + r);
        }
    }

    /** Records a new adapter (its factors follow with {@link #putFactors}); a name the layer holds is an error. */
    protected void addSettings(String adapter, Settings s, Rng dropoutRng) {
        registerAdapter(adapter);
        settings.put(adapter, s);
        dropoutRngs.put(adapter, dropoutRng);
    }

    @Override
    protected final void removeAdapterState(String adapter) {
        settings.remove(adapter);
        dropoutRngs.remove(adapter);
        removeEntries(adapter);
    }

    public Settings settings(String adapter) {
        requireAdapter(adapter);
        return settings.get(adapter);
    }

    /**
     * The dropout generators of every adapter of this layer (those with dropout), in adapter
     * order: a trainer saves and restores their states so that a resumed run draws the same masks.
     */
    public java.util.List<Rng> dropoutRngs() {
        java.util.List<Rng> out = new java.util.ArrayList<>();
        for (Rng r : dropoutRngs.values()) {
            if (r != null) {
                out.add(r);
            }
        }
        return out;
    }

    /** The dropout generator of an adapter (null when it has no dropout). */
    protected Rng dropoutRng(String adapter) {
        return dropoutRngs.get(adapter);
    }

    /** Factor A of an adapter ({@code [r, in]}). */
    public Parameter loraA(String adapter) {
        requireAdapter(adapter);
        return factor(aName, adapter);
    }

    /** Factor B of an adapter ({@code [out, r]}). */
    public Parameter loraB(String adapter) {
        requireAdapter(adapter);
        return factor(bName, adapter);
    }

    /** {@code s·B·A} ({@code [out, in]}, in the factors' type). */
    public INDArray deltaWeight(String adapter) {
        Settings s = settings(adapter);
        INDArray d = Nd4j.createUninitialized(loraA(adapter).value().dataType(), deltaOut(), deltaIn());
        Nd4j.gemm(loraB(adapter).value(), loraA(adapter).value(), d, false, false, s.scaling(), 0.0);
        return d;
    }

    /**
     * Adds an adapter with given factors {@code a [r, in]}, {@code b [out, r]} and scaling 1
     * (alpha = r), e.g. a weighted combination of others; its dropout is {@code dropout}.
     */
    public void addAdapterFromFactors(String adapter, INDArray a, INDArray b, double dropout) {
        int r = (int) a.size(0);
        if (a.size(1) != deltaIn() || b.size(0) != deltaOut() || b.size(1) != r) {
            throw new IllegalArgumentException("factors do not fit " + this + ": A " + Arrays.toString(a.shape())
                    + ", B " + Arrays.toString(b.shape()));
        }
        addSettings(adapter, new Settings(r, r, 1.0, dropout, false, false),
                dropout > 0 ? new Rng(adapter.hashCode() * 0x9E3779B97F4A7C15L) : null);
        putFactors(adapter, a, b);
    }

    /** PEFT's in-memory names: {@code lora_A.<adapter>.weight} (or {@code lora_embedding_A.<adapter>}). */
    @Override
    public Map<String, Parameter> adapterParameters(String adapter) {
        Map<String, Parameter> out = new LinkedHashMap<>();
        if (hasAdapter(adapter)) {
            out.put(aName + "." + adapter + entrySuffix, loraA(adapter));
            out.put(bName + "." + adapter + entrySuffix, loraB(adapter));
        }
        return out;
    }

    /** PEFT's saved names: {@code lora_A.weight} (or {@code lora_embedding_A}). */
    @Override
    public Map<String, Parameter> savedTensors(String adapter) {
        Map<String, Parameter> out = new LinkedHashMap<>();
        out.put(aName + entrySuffix, loraA(adapter));
        out.put(bName + entrySuffix, loraB(adapter));
        return out;
    }

    /** PEFT writes {@code bias = "lora_only"} biases as {@code <path>.bias}; they are this layer's {@code base_layer.bias}. */
    @Override
    public Map<String, String> savedKeyAliases(String adapter) {
        return Map.of("bias", BASE + ".bias");
    }
}
