package org.peft4j.lora;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.peft.MixedBatch;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * What both LoRA layer types ({@link LoraLinear}, {@link LoraEmbedding}) share: settings,
 * activity, merge records, and the adapter-dispatching forward; each layer brings only its base
 * call and its branch.
 */
final class AdapterBook {
    final Map<String, LoraLayer.Settings> settings = new LinkedHashMap<>();
    final Map<String, Rng> dropoutRngs = new LinkedHashMap<>();
    final List<String> active = new ArrayList<>();
    boolean enabled = true;

    /**
     * One merge: the base weight as it was just before it ({@code [out, in]} for a linear layer,
     * {@code [vocab, dim]} for an embedding), so unmerge restores it bit for bit. (Subtracting the
     * delta again would leave fp32 rounding residue; the copy costs what storing the delta did.)
     */
    record MergeRecord(String adapter, INDArray previousWeight) {
    }

    final List<MergeRecord> merged = new ArrayList<>();

    Set<String> names() {
        return java.util.Collections.unmodifiableSet(settings.keySet());
    }

    LoraLayer.Settings get(String adapter) {
        LoraLayer.Settings s = settings.get(adapter);
        if (s == null) {
            throw new IllegalArgumentException("no LoRA adapter '" + adapter + "' in this layer (adapters: " + settings.keySet() + ")");
        }
        return s;
    }

    void add(String adapter, LoraLayer.Settings s, Rng dropoutRng) {
        if (settings.containsKey(adapter)) {
            throw new IllegalArgumentException("LoRA adapter '" + adapter + "' already exists in this layer");
        }
        settings.put(adapter, s);
        dropoutRngs.put(adapter, dropoutRng);
        if (active.isEmpty()) {
            active.add(adapter);
        }
    }

    void remove(String adapter) {
        for (MergeRecord m : merged) {
            if (m.adapter().equals(adapter)) {
                throw new IllegalStateException("adapter '" + adapter + "' is merged; unmerge before deleting it");
            }
        }
        settings.remove(adapter);
        dropoutRngs.remove(adapter);
        active.remove(adapter);
    }

    List<String> mergedNames() {
        List<String> out = new ArrayList<>();
        for (MergeRecord m : merged) {
            out.add(m.adapter());
        }
        return out;
    }

    boolean isMerged(String adapter) {
        return mergedNames().contains(adapter);
    }

    /** True when any adapter is folded into the base weight. */
    boolean anyMerged() {
        return !merged.isEmpty();
    }

    /** Turns the adapters on or off; turning them off first unmerges {@code layer} (so it computes its base exactly). */
    void setEnabled(boolean on, LoraLayer layer) {
        if (!on && anyMerged()) {
            layer.unmerge();
        }
        enabled = on;
    }

    static void checkRank(int r) {
        if (r <= 0) {
            throw new IllegalArgumentException("LoRA rank must be positive, got " + r);
        }
    }

    /**
     * The rank of given factors {@code a [r, in]} and {@code b [out, r]} after checking that they
     * fit {@code layer} ({@code in} inputs, {@code out} outputs); the error names the layer and both shapes.
     */
    static int factorRank(LoraLayer layer, INDArray a, INDArray b, long in, long out) {
        int r = (int) a.size(0);
        if (a.size(1) != in || b.size(0) != out || b.size(1) != r) {
            throw new IllegalArgumentException("factors do not fit " + layer + ": A " + Arrays.toString(a.shape())
                    + ", B " + Arrays.toString(b.shape()));
        }
        return r;
    }

    /** {@code s·B·A} {@code [out, in]} in A's type (the weight delta of an adapter with factors A {@code [r, in]}, B {@code [out, r]}). */
    static INDArray delta(INDArray a, INDArray b, double scaling, long out, long in) {
        INDArray d = Nd4j.createUninitialized(a.dataType(), out, in);
        Nd4j.gemm(b, a, d, false, false, scaling, 0.0);
        return d;
    }

    /** One adapter's contribution added to {@code result}, for the batch {@code rows} (null = every row). */
    @FunctionalInterface
    interface Branch {
        Tensor add(Tensor result, String adapter, int[] rows);
    }

    /**
     * A LoRA layer's forward: disabled adapters give exactly the base output (unmerging {@code layer}
     * first); inside a {@link MixedBatch} each row group gets its own adapter's branch (unknown
     * adapters and the base group get none; merged adapters are an error); otherwise the active
     * adapters' branches are added unless they are merged into the base weight already.
     *
     * @param base  the base layer's output (computed first, so it validates the input)
     * @param batch the input's batch size (rows of a mixed batch), asked for after {@code base}
     */
    Tensor forward(LoraLayer layer, Supplier<Tensor> base, LongSupplier batch, Branch branch) {
        if (!enabled) {
            if (anyMerged()) {
                layer.unmerge();
            }
            return base.get();
        }
        MixedBatch mb = MixedBatch.current();
        if (mb != null) {
            if (anyMerged()) {
                throw new IllegalStateException("mixed-adapter batches need unmerged adapters; unmerge first");
            }
            Tensor result = base.get();
            for (Map.Entry<String, int[]> g : mb.groups(batch.getAsLong()).entrySet()) {
                if (MixedBatch.BASE.equals(g.getKey()) || !settings.containsKey(g.getKey())) {
                    continue;
                }
                result = branch.add(result, g.getKey(), g.getValue());
            }
            return result;
        }
        Tensor result = base.get();
        if (anyMerged()) {
            return result;
        }
        for (String name : active) {
            if (settings.containsKey(name)) {
                result = branch.add(result, name, null);
            }
        }
        return result;
    }

    /** {@code adapters=[...], active=[...]} and the merged adapters if any, for a layer's description. */
    String describe() {
        return "adapters=" + settings.keySet() + ", active=" + active + (anyMerged() ? ", merged=" + mergedNames() : "");
    }
}
