package org.peft4j.core.train;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.Axpy;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Parameter;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Stochastic gradient descent with momentum, with PyTorch's {@code torch.optim.SGD} semantics
 * (weight decay is the classic L2 term added to the gradient):
 * <pre>
 *   d ← g + wd·p
 *   b ← d                          on a parameter's first update
 *   b ← μ·b + (1 − dampening)·d    afterwards
 *   d ← nesterov ? d + μ·b : b     (when μ ≠ 0)
 *   p ← p − lr·d
 * </pre>
 * Updates run in place with ND4J ops; momentum buffers exist only for parameters that have
 * received a gradient.
 */
public final class Sgd extends BaseOptimizer {

    static final String TYPE = "sgd";
    private static final Set<String> SLOTS = Set.of("momentum_buffer");

    private final double momentum;
    private final double dampening;
    private final boolean nesterov;
    private final Map<String, Long> steps = new LinkedHashMap<>();
    private final Map<String, INDArray> buffers = new LinkedHashMap<>();

    private Sgd(Builder b) {
        super(b.params, b.lr, b.weightDecay, b.overrides);
        if (!(b.momentum >= 0) || Double.isInfinite(b.momentum)) {
            throw new IllegalArgumentException("momentum must be finite and >= 0: " + b.momentum);
        }
        if (!(b.dampening >= 0 && b.dampening <= 1)) {
            throw new IllegalArgumentException("dampening must be in [0, 1]: " + b.dampening);
        }
        if (b.nesterov && (b.momentum <= 0 || b.dampening != 0)) {
            throw new IllegalArgumentException("nesterov momentum requires momentum > 0 and dampening = 0");
        }
        this.momentum = b.momentum;
        this.dampening = b.dampening;
        this.nesterov = b.nesterov;
    }

    /** SGD with momentum, no dampening, no weight decay. */
    public Sgd(Map<String, Parameter> params, double lr, double momentum) {
        this(builder(params).lr(lr).momentum(momentum));
    }

    public static Builder builder(Map<String, Parameter> params) {
        return new Builder(params);
    }

    public double momentum() {
        return momentum;
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
            INDArray w = p.value();
            INDArray d = g;   // read-only unless it is the scratch
            double wd = weightDecayFor(name);
            if (wd != 0.0) {
                d = scratchLike(w);
                Nd4j.exec(new Axpy(w, g, d, wd));                    // d = g + wd·w
            }
            steps.merge(name, 1L, Long::sum);
            if (momentum == 0.0) {
                Nd4j.exec(new Axpy(d, w, w, -lr));                   // p ← p − lr·d
                continue;
            }
            INDArray buf = buffers.get(name);
            if (buf == null) {
                buf = d.dup('c');
                buffers.put(name, buf);
            } else {
                buf.muli(momentum);
                Nd4j.exec(new Axpy(d, buf, buf, 1.0 - dampening));  // b ← μ·b + (1 − dampening)·d
            }
            if (nesterov) {
                Nd4j.exec(new Axpy(d, w, w, -lr));                   // p ← p − lr·(d + μ·b)
                Nd4j.exec(new Axpy(buf, w, w, -lr * momentum));
            } else {
                Nd4j.exec(new Axpy(buf, w, w, -lr));                 // p ← p − lr·b
            }
        }
    }

    @Override
    public OptimizerState state() {
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        buffers.forEach((name, b) -> tensors.put(name + ".momentum_buffer", b.dup('c')));
        return new OptimizerState(TYPE, steps, tensors);
    }

    @Override
    public void loadState(OptimizerState saved) {
        Map<String, INDArray> restored = new LinkedHashMap<>();
        restoreSlots(saved, TYPE, SLOTS).forEach((name, slots) -> restored.put(name, slots.get("momentum_buffer")));
        for (Map.Entry<String, Long> e : saved.steps().entrySet()) {
            if (!parameters().containsKey(e.getKey())) {
                throw new IllegalArgumentException("optimizer state has a step count for unknown parameter '" + e.getKey() + "'");
            }
            if (momentum != 0.0 && !restored.containsKey(e.getKey())) {
                throw new IllegalArgumentException("optimizer state for '" + e.getKey() + "' has no momentum_buffer");
            }
        }
        steps.clear();
        steps.putAll(saved.steps());
        buffers.clear();
        buffers.putAll(restored);
    }

    /** Settings for {@link Sgd}; defaults: lr 1e-2, no momentum, no dampening, no decay. */
    public static final class Builder {
        private final Map<String, Parameter> params;
        private double lr = 1e-2;
        private double momentum = 0.0;
        private double dampening = 0.0;
        private boolean nesterov = false;
        private double weightDecay = 0.0;
        private final Map<String, Double> overrides = new LinkedHashMap<>();

        private Builder(Map<String, Parameter> params) {
            this.params = params;
        }

        public Builder lr(double lr) {
            this.lr = lr;
            return this;
        }

        public Builder momentum(double momentum) {
            this.momentum = momentum;
            return this;
        }

        public Builder dampening(double dampening) {
            this.dampening = dampening;
            return this;
        }

        public Builder nesterov(boolean nesterov) {
            this.nesterov = nesterov;
            return this;
        }

        /** L2 decay for parameters of rank ≥ 2; rank ≤ 1 parameters get 0 unless overridden. */
        public Builder weightDecay(double weightDecay) {
            this.weightDecay = weightDecay;
            return this;
        }

        public Builder weightDecayOverride(String regex, double weightDecay) {
            overrides.putIfAbsent(regex, weightDecay);
            return this;
        }

        public Sgd build() {
            return new Sgd(this);
        }
    }
}
