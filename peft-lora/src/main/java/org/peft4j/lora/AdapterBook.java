package org.peft4j.lora;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.tensor.Rng;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** The bookkeeping both LoRA layer types share: settings, activity, merge records. */
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
}
