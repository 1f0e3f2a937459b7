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

    /** What one merge changed, so unmerge can subtract exactly that. */
    record MergeRecord(String adapter, INDArray delta, INDArray doraFactor) {
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
