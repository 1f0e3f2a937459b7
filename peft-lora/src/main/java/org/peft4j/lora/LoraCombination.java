package org.peft4j.lora;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.nn.Module;
import org.peft4j.core.peft.ModulesToSaveWrapper;
import org.peft4j.core.peft.PeftConfig;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** LoRA's weighted combination of adapters into a new one (PEFT's {@code add_weighted_adapter}). */
final class LoraCombination {
    private LoraCombination() {
    }

    /**
     * PEFT's {@code add_weighted_adapter} for LoRA, with scaling {@code s_i} of each source:
     * <ul>
     *   <li>{@code linear} (equal ranks): {@code A = Σ sign(w_i s_i)·√|w_i s_i|·A_i},
     *       {@code B = Σ √|w_i s_i|·B_i} (PEFT's formula; the product has cross terms unless one source);</li>
     *   <li>{@code cat}: {@code A = [w_1 s_1 A_1; w_2 s_2 A_2; …]}, {@code B = [B_1, B_2, …]}, so
     *       {@code B·A = Σ w_i·s_i·B_i·A_i} exactly, rank = Σ r_i;</li>
     *   <li>{@code svd}: truncated SVD of {@code Σ w_i·ΔW_i} ({@code ΔW_i = s_i·B_i·A_i}) to the new rank
     *       (default the largest source rank): {@code B = U_r·diag(S_r)}, {@code A = Vᵀ_r}. (PEFT's
     *       code multiplies each already-scaled ΔW_i by s_i once more; the two agree when alpha = r.)</li>
     * </ul>
     * The new adapter has alpha = r (scaling 1) and targets exactly the modules where a source lives.
     */
    static PeftConfig combine(Module model, Map<String, PeftConfig> configs, List<String> adapters,
                                         List<Double> weights, String newName, String combinationType, Integer svdRank) {
        String type = combinationType == null ? "svd" : combinationType.toLowerCase(Locale.ROOT);
        if (adapters.size() == 1) {
            type = "linear";
        }
        // as PEFT's _check_add_weighted_adapter: two copies of one module to save cannot be combined
        for (Module m : model.namedModules().values()) {
            if (m instanceof ModulesToSaveWrapper w && adapters.stream().filter(w::hasAdapter).count() > 1) {
                throw new IllegalArgumentException("cannot combine adapters " + adapters
                        + " that each have their own copy of a module to save");
            }
        }
        if (!List.of("linear", "cat", "svd").contains(type)) {
            throw new IllegalArgumentException("combination_type must be 'linear', 'cat' or 'svd', got '" + combinationType + "'");
        }
        List<Integer> ranks = new ArrayList<>();
        for (String a : adapters) {
            LoraConfig c = (LoraConfig) configs.get(a);
            if (c.useDora()) {
                throw new IllegalArgumentException("adapter '" + a + "' uses DoRA; weighted combination supports plain LoRA only");
            }
            int r = c.r();
            for (int v : c.rankPattern().values()) {
                r = Math.max(r, v);
            }
            ranks.add(r);
        }
        int newRank;
        switch (type) {
            case "linear" -> {
                if (new LinkedHashSet<>(ranks).size() != 1) {
                    throw new IllegalArgumentException("combination 'linear' needs adapters of equal rank, got " + ranks
                            + " for " + adapters);
                }
                newRank = ranks.get(0);
            }
            case "cat" -> newRank = ranks.stream().mapToInt(Integer::intValue).sum();
            default -> newRank = svdRank != null ? svdRank : ranks.stream().mapToInt(Integer::intValue).max().orElseThrow();
        }
        if (newRank <= 0) {
            throw new IllegalArgumentException("the combined adapter's rank must be positive, got " + newRank);
        }
        LoraConfig first = (LoraConfig) configs.get(adapters.get(0));
        List<String> paths = new ArrayList<>();
        for (Map.Entry<String, LoraLayer> e : LoraMethod.loraLayers(model).entrySet()) {
            LoraLayer layer = e.getValue();
            List<Integer> present = new ArrayList<>();
            for (int i = 0; i < adapters.size(); i++) {
                if (layer.adapterNames().contains(adapters.get(i))) {
                    present.add(i);
                }
            }
            if (present.isEmpty()) {
                continue;
            }
            INDArray[] ab = switch (type) {
                case "linear" -> linear(layer, adapters, weights, present, newRank, e.getKey());
                case "cat" -> cat(layer, adapters, weights, present, newRank);
                default -> svd(layer, adapters, weights, present, newRank);
            };
            layer.addAdapterFromFactors(newName, ab[0], ab[1], first.loraDropout());
            paths.add(e.getKey());
        }
        if (paths.isEmpty()) {
            throw new IllegalArgumentException("no LoRA layer holds any of the adapters " + adapters);
        }
        return first.combined(newRank, paths);
    }

    private static INDArray[] linear(LoraLayer layer, List<String> adapters, List<Double> weights, List<Integer> present,
                                     int newRank, String path) {
        INDArray a = null;
        INDArray b = null;
        for (int i : present) {
            String name = adapters.get(i);
            LoraLayer.Settings s = layer.settings(name);
            if (s.r() != newRank) {
                throw new IllegalArgumentException("combination 'linear' at '" + path + "': adapter '" + name + "' has rank "
                        + s.r() + ", expected " + newRank);
            }
            double ws = weights.get(i) * s.scaling();
            double root = Math.sqrt(Math.abs(ws));
            double sign = ws >= 0 ? 1.0 : -1.0;
            INDArray ai = layer.loraA(name).value().castTo(DataType.DOUBLE).mul(sign * root);
            INDArray bi = layer.loraB(name).value().castTo(DataType.DOUBLE).mul(root);
            a = a == null ? ai : a.addi(ai);
            b = b == null ? bi : b.addi(bi);
        }
        return new INDArray[]{a, b};
    }

    private static INDArray[] cat(LoraLayer layer, List<String> adapters, List<Double> weights, List<Integer> present,
                                  int newRank) {
        String any = adapters.get(present.get(0));
        long in = layer.loraA(any).size(1);
        long out = layer.loraB(any).size(0);
        INDArray a = Nd4j.zeros(DataType.DOUBLE, newRank, in);
        INDArray b = Nd4j.zeros(DataType.DOUBLE, out, newRank);
        long row = 0;
        for (int i : present) {
            String name = adapters.get(i);
            LoraLayer.Settings s = layer.settings(name);
            INDArray ai = layer.loraA(name).value().castTo(DataType.DOUBLE).mul(weights.get(i) * s.scaling());
            INDArray bi = layer.loraB(name).value().castTo(DataType.DOUBLE);
            long r = ai.size(0);
            a.get(NDArrayIndex.interval(row, row + r), NDArrayIndex.all()).assign(ai);
            b.get(NDArrayIndex.all(), NDArrayIndex.interval(row, row + r)).assign(bi);
            row += r;
        }
        return new INDArray[]{a, b};
    }

    private static INDArray[] svd(LoraLayer layer, List<String> adapters, List<Double> weights, List<Integer> present,
                                  int newRank) {
        INDArray delta = null;
        for (int i : present) {
            INDArray d = layer.deltaWeight(adapters.get(i)).castTo(DataType.DOUBLE).mul(weights.get(i));
            delta = delta == null ? d : delta.addi(d);
        }
        long out = delta.size(0);
        long in = delta.size(1);
        LinAlg.SVD svd = LinAlg.svd(delta);
        long k = Math.min(newRank, svd.s().length());
        INDArray a = Nd4j.zeros(DataType.DOUBLE, newRank, in);
        INDArray b = Nd4j.zeros(DataType.DOUBLE, out, newRank);
        INDArray s = svd.s().get(NDArrayIndex.interval(0, k));
        b.get(NDArrayIndex.all(), NDArrayIndex.interval(0, k))
                .assign(svd.u().get(NDArrayIndex.all(), NDArrayIndex.interval(0, k)).mulRowVector(s.reshape(1, k)));
        a.get(NDArrayIndex.interval(0, k), NDArrayIndex.all())
                .assign(svd.vt().get(NDArrayIndex.interval(0, k), NDArrayIndex.all()));
        return new INDArray[]{a, b};
    }
}
