package org.peft4j.adapter;

import org.peft4j.core.peft.PeftModel;

import java.util.Arrays;
import java.util.List;

/**
 * AdapterHub's composition blocks over the bottleneck adapters of a {@link PeftModel}: {@code Stack}
 * and {@code Average} ({@code Fuse} is an AdapterFusion adapter: add one with a fusion
 * {@link BottleneckConfig} and {@link PeftModel#setAdapter} it). A composition lasts until the next
 * {@code setAdapter}; it does not change which adapter trains.
 */
public final class Compositions {
    private Compositions() {
    }

    /** {@code Stack(names...)}: the adapters one after another at every place. */
    public static void stack(PeftModel model, List<String> names) {
        check(model, names, "Stack");
        BottleneckMethod.layers(model.baseModel()).values().forEach(l -> l.setComposition(BottleneckLayer.Mode.STACK, names, null));
    }

    /**
     * {@code Average(names..., weights=...)}: the adapters on the same input, their outputs averaged
     * with {@code weights} (normalised to sum 1; null: equal weights), as the library computes it
     * ({@code torch.mean(stack(outputs) * weights, 0)}).
     */
    public static void average(PeftModel model, List<String> names, List<Double> weights) {
        check(model, names, "Average");
        double[] w = new double[names.size()];
        if (weights == null) {
            Arrays.fill(w, 1.0 / names.size());
        } else {
            if (weights.size() != names.size()) {
                throw new IllegalArgumentException("Average: " + weights.size() + " weights for " + names.size() + " adapters");
            }
            double sum = weights.stream().mapToDouble(Double::doubleValue).sum();
            for (int i = 0; i < w.length; i++) {
                w[i] = weights.get(i) / sum;
            }
        }
        BottleneckMethod.layers(model.baseModel()).values().forEach(l -> l.setComposition(BottleneckLayer.Mode.AVERAGE, names, w));
    }

    private static void check(PeftModel model, List<String> names, String block) {
        if (!(model.method() instanceof BottleneckMethod)) {
            throw new IllegalArgumentException(block + " composes bottleneck adapters; this model holds " + model.method().peftType());
        }
        if (names == null || names.isEmpty()) {
            throw new IllegalArgumentException(block + " needs at least one adapter");
        }
        for (String n : names) {
            if (!model.adapterNames().contains(n) || ((BottleneckConfig) model.config(n)).isFusion()) {
                throw new IllegalArgumentException(block + ": no bottleneck adapter '" + n + "' in the model (adapters: "
                        + model.adapterNames() + ")");
            }
        }
    }
}
