package org.peft4j.core.peft;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * The state every adapter layer shares (PEFT's {@code BaseTunerLayer}): which adapters it holds,
 * which are active, whether adapters are enabled, which are merged (with what undoes each merge),
 * and the forward dispatch that turns that state — and a {@link MixedBatch} — into calls of the
 * method's own math. A method's layer extends this class and writes only:
 * <ul>
 *   <li>its tensors per adapter (created in its own {@code addAdapter}, registered with
 *       {@link #registerAdapter}, removed in {@link #removeAdapterState}), their
 *       {@link #adapterParameters} and {@link #savedTensors};</li>
 *   <li>its forward, as a call of {@link #adaptedForward} with the base call and one branch;</li>
 *   <li>optionally merging: {@link #mergeAdapter} / {@link #restoreMerged}.</li>
 * </ul>
 *
 * <p>The wrapped module is the child {@code baseName} ({@code base_layer} for LoRA, as in PEFT).
 */
public abstract class BaseAdapterLayer extends Module implements AdapterLayer {
    private final String baseName;
    private final Set<String> adapters = new LinkedHashSet<>();
    private final List<String> active = new ArrayList<>();
    private boolean enabled = true;

    /** One merge: the adapter and what {@link #restoreMerged} needs to undo it exactly. */
    private record MergeRecord(String adapter, INDArray previous) {
    }

    private final List<MergeRecord> merged = new ArrayList<>();

    /** Registers {@code base} as child {@code baseName}. */
    protected BaseAdapterLayer(String baseName, Module base) {
        if (base == null) {
            throw new IllegalArgumentException("an adapter layer needs a base module");
        }
        this.baseName = baseName;
        registerModule(baseName, base);
    }

    @Override
    public Module baseLayer() {
        return child(baseName);
    }

    // ---- adapters ------------------------------------------------------------------------------

    @Override
    public Set<String> adapterNames() {
        return Collections.unmodifiableSet(adapters);
    }

    public boolean hasAdapter(String adapter) {
        return adapters.contains(adapter);
    }

    /** Throws naming the layer's adapters when {@code adapter} is not one of them. */
    protected void requireAdapter(String adapter) {
        if (!adapters.contains(adapter)) {
            throw new IllegalArgumentException("no adapter '" + adapter + "' in " + describe() + " (adapters: " + adapters + ")");
        }
    }

    /**
     * Records a new adapter (the subclass has created its tensors); the first adapter of a layer
     * becomes its active one.
     */
    protected void registerAdapter(String adapter) {
        if (adapters.contains(adapter)) {
            throw new IllegalArgumentException("adapter '" + adapter + "' already exists in " + describe());
        }
        adapters.add(adapter);
        if (active.isEmpty()) {
            active.add(adapter);
        }
    }

    /** Drops the subclass's tensors of {@code adapter} (called by {@link #deleteAdapter}). */
    protected abstract void removeAdapterState(String adapter);

    @Override
    public void deleteAdapter(String adapter) {
        if (!adapters.contains(adapter)) {
            return;
        }
        if (mergedAdapters().contains(adapter)) {
            throw new IllegalStateException("adapter '" + adapter + "' is merged; unmerge before deleting it");
        }
        removeAdapterState(adapter);
        adapters.remove(adapter);
        active.remove(adapter);
    }

    @Override
    public List<String> activeAdapters() {
        return List.copyOf(active);
    }

    @Override
    public void setActiveAdapters(List<String> names) {
        active.clear();
        active.addAll(names);
    }

    @Override
    public boolean adaptersEnabled() {
        return enabled;
    }

    @Override
    public void setAdaptersEnabled(boolean on) {
        if (!on && isMerged()) {
            unmerge();
        }
        enabled = on;
    }

    // ---- merging -------------------------------------------------------------------------------

    /**
     * Folds {@code adapter} into the base weights and returns what {@link #restoreMerged} needs to
     * undo exactly this merge (the weight as it was before, so unmerging restores it bit for bit:
     * subtracting the delta again would leave fp32 rounding residue).
     */
    protected INDArray mergeAdapter(String adapter) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " adapters cannot be merged into the base weights");
    }

    /** Undoes the merge of {@code adapter} given what {@link #mergeAdapter} returned. */
    protected void restoreMerged(String adapter, INDArray previous) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " adapters cannot be merged into the base weights");
    }

    @Override
    public void merge(List<String> names) {
        for (String name : names) {
            if (!adapters.contains(name) || mergedAdapters().contains(name)) {
                continue;
            }
            merged.add(new MergeRecord(name, mergeAdapter(name)));
        }
    }

    @Override
    public void unmerge() {
        while (!merged.isEmpty()) {
            MergeRecord m = merged.remove(merged.size() - 1);   // newest first: back to the exact pre-merge weights
            restoreMerged(m.adapter(), m.previous());
        }
    }

    @Override
    public boolean isMerged() {
        return !merged.isEmpty();
    }

    @Override
    public List<String> mergedAdapters() {
        List<String> out = new ArrayList<>();
        for (MergeRecord m : merged) {
            out.add(m.adapter());
        }
        return out;
    }

    @Override
    public Module unwrap(boolean merge) {
        if (merge) {
            merge(activeAdapters());
        }
        return baseLayer();
    }

    // ---- forward dispatch ----------------------------------------------------------------------

    /** One adapter's effect on the output, for the batch rows {@code rows} (null = every row). */
    @FunctionalInterface
    protected interface Branch {
        Tensor apply(Tensor result, String adapter, int[] rows);
    }

    /**
     * The forward of a layer whose adapters act on its base output (LoRA adds, IA3 scales):
     * disabled adapters give exactly the base output (unmerging first); inside a {@link MixedBatch}
     * each row group gets its own adapter's branch (the base group and adapters this layer does
     * not hold get none; merged adapters are an error); otherwise each active adapter's branch,
     * unless merged into the base weights already.
     *
     * @param base  the base layer's output (computed first, so it validates the input)
     * @param batch the input's leading size (rows of a mixed batch), asked for after {@code base}
     */
    protected final Tensor adaptedForward(Supplier<Tensor> base, LongSupplier batch, Branch branch) {
        if (!enabled) {
            if (isMerged()) {
                unmerge();
            }
            return base.get();
        }
        MixedBatch mb = MixedBatch.current();
        if (mb != null) {
            if (isMerged()) {
                throw new IllegalStateException("mixed-adapter batches need unmerged adapters; unmerge first");
            }
            Tensor result = base.get();
            for (Map.Entry<String, int[]> g : mb.groups(batch.getAsLong()).entrySet()) {
                if (!MixedBatch.BASE.equals(g.getKey()) && adapters.contains(g.getKey())) {
                    result = branch.apply(result, g.getKey(), g.getValue());
                }
            }
            return result;
        }
        Tensor result = base.get();
        if (isMerged()) {
            return result;
        }
        for (String name : active) {
            if (adapters.contains(name)) {
                result = branch.apply(result, name, null);
            }
        }
        return result;
    }

    /**
     * The forward of a layer whose adapters replace its base module ({@code modules_to_save}):
     * the first active adapter's module, or the base when adapters are disabled or none is
     * held; inside a {@link MixedBatch} each row group runs through its own adapter's module (or
     * the base), as constants (mixed batches are for inference).
     */
    protected final Tensor replacedForward(Tensor x, Function<String, UnaryModule> moduleOf) {
        UnaryModule base = (UnaryModule) baseLayer();
        MixedBatch mb = MixedBatch.current();
        if (!enabled) {
            return base.forward(x);
        }
        if (mb == null) {
            for (String name : active) {
                if (adapters.contains(name)) {
                    return moduleOf.apply(name).forward(x);
                }
            }
            return base.forward(x);
        }
        INDArray out = null;
        for (Map.Entry<String, int[]> g : mb.groups(x.size(0)).entrySet()) {
            UnaryModule m = adapters.contains(g.getKey()) ? moduleOf.apply(g.getKey()) : base;
            INDArray y = m.forward(Tensor.constant(MixedBatch.selectRows(x.value(), g.getValue()))).value();
            if (out == null) {
                long[] shape = y.shape().clone();
                shape[0] = x.size(0);
                out = Nd4j.createUninitialized(y.dataType(), shape, 'c');
            }
            MixedBatch.putRows(out, g.getValue(), y);
        }
        return Tensor.constant(out);
    }

    /** {@code adapters=[...], active=[...]} and the merged adapters if any, for {@link #describe()}. */
    protected String describeAdapters() {
        return "adapters=" + adapters + ", active=" + active + (isMerged() ? ", merged=" + mergedAdapters() : "");
    }
}
