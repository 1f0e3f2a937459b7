package org.peft4j.core.train;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.floating.Sqrt;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.Axpy;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.DivOp;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.MulOp;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.tensor.Kernels;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Adam with decoupled weight decay, with PyTorch's {@code torch.optim.AdamW} semantics. For
 * each parameter with a gradient {@code g}, at its {@code t}-th update:
 * <pre>
 *   p ← p · (1 − lr·wd)                         decoupled decay (wd from the parameter's group)
 *   m ← β₁·m + (1 − β₁)·g
 *   v ← β₂·v + (1 − β₂)·g²
 *   p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)     ε outside the square root
 * </pre>
 * Updates run in place on the parameter and state arrays: for FLOAT tensors in one fused pass
 * ({@code Kernels.adamW}); otherwise with ND4J ops (nine passes per tensor, fused multiply-adds
 * via {@code Axpy}), whose only temporary is a shared scratch buffer. State ({@code exp_avg}, {@code exp_avg_sq}) is allocated on a
 * parameter's first update, so parameters that never receive a gradient cost nothing.
 */
public final class AdamW extends BaseOptimizer {

    static final String TYPE = "adamw";
    private static final Set<String> SLOTS = Set.of("exp_avg", "exp_avg_sq");

    private final double beta1;
    private final double beta2;
    private final double eps;
    private final Map<String, Slot> state = new LinkedHashMap<>();

    private static final class Slot {
        long step;
        INDArray expAvg;
        INDArray expAvgSq;
    }

    private AdamW(Builder b) {
        super(b.params, b.lr, b.weightDecay, b.overrides);
        if (!(b.beta1 >= 0 && b.beta1 < 1)) {
            throw new IllegalArgumentException("beta1 must be in [0, 1): " + b.beta1);
        }
        if (!(b.beta2 >= 0 && b.beta2 < 1)) {
            throw new IllegalArgumentException("beta2 must be in [0, 1): " + b.beta2);
        }
        if (!(b.eps >= 0) || Double.isInfinite(b.eps)) {
            throw new IllegalArgumentException("eps must be finite and >= 0: " + b.eps);
        }
        this.beta1 = b.beta1;
        this.beta2 = b.beta2;
        this.eps = b.eps;
    }

    /** AdamW with PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8) and the given rate and decay. */
    public AdamW(Map<String, Parameter> params, double lr, double weightDecay) {
        this(builder(params).lr(lr).weightDecay(weightDecay));
    }

    public static Builder builder(Map<String, Parameter> params) {
        return new Builder(params);
    }

    public double beta1() {
        return beta1;
    }

    public double beta2() {
        return beta2;
    }

    public double eps() {
        return eps;
    }

    @Override
    public void step() {
        double lr = learningRate();
        for (Map.Entry<String, Parameter> e : parameters().entrySet()) {
            String name = e.getKey();
            Parameter p = e.getValue();
            INDArray g = gradOf(name, p);
            if (g == null) {
                continue;
            }
            Slot s = state.computeIfAbsent(name, k -> {
                Slot n = new Slot();
                n.expAvg = zerosLike(p);
                n.expAvgSq = zerosLike(p);
                return n;
            });
            s.step++;
            INDArray w = p.value();
            double wd = weightDecayFor(name);
            if (Kernels.usable(w) && Kernels.usable(g) && Kernels.usable(s.expAvg) && Kernels.usable(s.expAvgSq)) {
                // FLOAT: the same update as below in one fused pass (perf)
                double bc1 = 1.0 - Math.pow(beta1, s.step);
                double sqrtBc2 = Math.sqrt(1.0 - Math.pow(beta2, s.step));
                Kernels.adamW(w, g, s.expAvg, s.expAvgSq, (float) (wd != 0.0 ? 1.0 - lr * wd : 1.0), (float) beta1,
                        (float) beta2, (float) (1.0 - beta1), (float) (1.0 - beta2), (float) (lr * sqrtBc2 / bc1),
                        (float) (eps * sqrtBc2));
                continue;
            }
            INDArray tmp = scratchLike(w);

            if (wd != 0.0) {
                w.muli(1.0 - lr * wd);
            }
            // m ← β₁·m + (1 − β₁)·g
            s.expAvg.muli(beta1);
            Nd4j.exec(new Axpy(g, s.expAvg, s.expAvg, 1.0 - beta1));
            // v ← β₂·v + (1 − β₂)·g²
            Nd4j.exec(new MulOp(g, g, tmp));
            s.expAvgSq.muli(beta2);
            Nd4j.exec(new Axpy(tmp, s.expAvgSq, s.expAvgSq, 1.0 - beta2));

            // p ← p − (lr/bc1)·m / (√v/√bc2 + ε), evaluated as p − (lr·√bc2/bc1)·m / (√v + ε·√bc2):
            // the same quantity with one pass fewer over the tensor
            double bc1 = 1.0 - Math.pow(beta1, s.step);
            double sqrtBc2 = Math.sqrt(1.0 - Math.pow(beta2, s.step));
            Nd4j.exec(new Sqrt(s.expAvgSq, tmp));
            tmp.addi(eps * sqrtBc2);
            Nd4j.exec(new DivOp(s.expAvg, tmp, tmp));
            Nd4j.exec(new Axpy(tmp, w, w, -lr * sqrtBc2 / bc1));
        }
    }

    @Override
    public OptimizerState state() {
        Map<String, Long> steps = new LinkedHashMap<>();
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        state.forEach((name, s) -> {
            steps.put(name, s.step);
            tensors.put(name + ".exp_avg", s.expAvg.dup('c'));
            tensors.put(name + ".exp_avg_sq", s.expAvgSq.dup('c'));
        });
        return new OptimizerState(TYPE, steps, tensors);
    }

    @Override
    public void loadState(OptimizerState saved) {
        Map<String, Slot> restored = new LinkedHashMap<>();
        for (Map.Entry<String, Map<String, INDArray>> e : restoreSlots(saved, TYPE, SLOTS).entrySet()) {
            Slot s = new Slot();
            s.expAvg = e.getValue().get("exp_avg");
            s.expAvgSq = e.getValue().get("exp_avg_sq");
            restored.put(e.getKey(), s);
        }
        for (Map.Entry<String, Slot> e : restored.entrySet()) {
            Slot s = e.getValue();
            if (s.expAvg == null || s.expAvgSq == null) {
                throw new IllegalArgumentException("optimizer state for '" + e.getKey() + "' needs both exp_avg and exp_avg_sq");
            }
            Long step = saved.steps().get(e.getKey());
            if (step == null || step <= 0) {
                throw new IllegalArgumentException("optimizer state for '" + e.getKey() + "' has no positive step count");
            }
            s.step = step;
        }
        for (String name : saved.steps().keySet()) {
            if (!restored.containsKey(name)) {
                throw new IllegalArgumentException("optimizer state has a step count for '" + name + "' but no tensors");
            }
        }
        state.clear();
        state.putAll(restored);
    }

    /** Settings for {@link AdamW}; defaults are PyTorch's (lr 1e-3, β (0.9, 0.999), ε 1e-8, decay 0.01). */
    public static final class Builder {
        private final Map<String, Parameter> params;
        private double lr = 1e-3;
        private double beta1 = 0.9;
        private double beta2 = 0.999;
        private double eps = 1e-8;
        private double weightDecay = 0.01;
        private final Map<String, Double> overrides = new LinkedHashMap<>();

        private Builder(Map<String, Parameter> params) {
            this.params = params;
        }

        public Builder lr(double lr) {
            this.lr = lr;
            return this;
        }

        public Builder betas(double beta1, double beta2) {
            this.beta1 = beta1;
            this.beta2 = beta2;
            return this;
        }

        public Builder eps(double eps) {
            this.eps = eps;
            return this;
        }

        /** Decay for parameters of rank ≥ 2; rank ≤ 1 parameters get 0 unless overridden. */
        public Builder weightDecay(double weightDecay) {
            this.weightDecay = weightDecay;
            return this;
        }

        /** Parameters whose whole name matches {@code regex} get {@code weightDecay} (first override added wins). */
        public Builder weightDecayOverride(String regex, double weightDecay) {
            overrides.putIfAbsent(regex, weightDecay);
            return this;
        }

        public AdamW build() {
            return new AdamW(this);
        }
    }
}
