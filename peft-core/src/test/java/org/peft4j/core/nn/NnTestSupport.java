package org.peft4j.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Test helpers for modules: switching a module to DOUBLE and a numerical gradient check that
 * covers both the inputs and every trainable parameter of a module (the shared
 * {@link GradCheck} only sees its own input tensors).
 *
 * <p>The check projects the output onto a scalar {@code L = Σ out·R} with a fixed-seed normal R,
 * runs {@code out.backward(R)} and compares each analytic gradient element (a fixed-seed random
 * subset of at most {@code maxElements} per tensor) with the central difference
 * {@code (L(x+h) − L(x−h)) / 2h}; an element passes when
 * {@code |analytic − numeric| ≤ absTol + relTol·max(|analytic|, |numeric|)}.
 */
final class NnTestSupport {
    private NnTestSupport() {
    }

    /** Widens every parameter of {@code m} to DOUBLE in place. */
    static <M extends Module> M toDouble(M m) {
        for (Parameter p : m.parameters()) {
            p.resetValue(p.value().castTo(DataType.DOUBLE));
        }
        return m;
    }

    static INDArray randn(Rng rng, long... shape) {
        return GradCheck.random(rng, shape);
    }

    static double maxAbsDiff(INDArray a, INDArray b) {
        if (!Arrays.equals(a.shape(), b.shape())) {
            throw new AssertionError("shapes differ: " + Arrays.toString(a.shape()) + " vs " + Arrays.toString(b.shape()));
        }
        if (a.isNaN().any() || b.isNaN().any() || a.isInfinite().any() || b.isInfinite().any()) {
            return Double.NaN;   // fails every "<= tol" assertion
        }
        return a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    }

    /** Builder-style module gradient check. */
    static final class Check {
        private final String name;
        private final Module module;
        private final Function<Tensor[], Tensor> fn;
        private final INDArray[] inputs;
        private boolean[] inputGrad;
        private double h = 1e-6;
        private double absTol = 1e-6;
        private double relTol = 1e-4;
        private int maxElements = 40;
        private long seed = 99L;

        Check(String name, Module module, Function<Tensor[], Tensor> fn, INDArray... inputs) {
            this.name = name;
            this.module = module;
            this.fn = fn;
            this.inputs = inputs;
            this.inputGrad = new boolean[inputs.length];
            Arrays.fill(inputGrad, true);
        }

        Check inputGrad(boolean... flags) {
            this.inputGrad = flags.clone();
            return this;
        }

        Check maxElements(int n) {
            this.maxElements = n;
            return this;
        }

        Check tolerance(double abs, double rel) {
            this.absTol = abs;
            this.relTol = rel;
            return this;
        }

        /** Runs the check; returns the number of elements compared. */
        int run() {
            Map<String, Tensor> targets = new LinkedHashMap<>();
            Map<String, INDArray> values = new LinkedHashMap<>();
            Tensor[] ts = new Tensor[inputs.length];
            for (int i = 0; i < inputs.length; i++) {
                if (inputs[i].dataType() != DataType.DOUBLE) {
                    throw new AssertionError(name + ": input " + i + " must be DOUBLE");
                }
                ts[i] = inputGrad[i] ? Tensor.variable(inputs[i]) : Tensor.constant(inputs[i]);
                if (inputGrad[i]) {
                    targets.put("input" + i, ts[i]);
                    values.put("input" + i, inputs[i]);
                }
            }
            if (module != null) {
                for (Map.Entry<String, Parameter> e : module.namedParameters().entrySet()) {
                    Parameter p = e.getValue();
                    if (p.value().dataType() != DataType.DOUBLE) {
                        throw new AssertionError(name + ": parameter " + e.getKey() + " is " + p.value().dataType());
                    }
                    p.zeroGrad();
                    if (p.isTrainable()) {
                        targets.put(e.getKey(), p);
                        values.put(e.getKey(), p.value());
                    }
                }
            }
            Tensor out = fn.apply(ts);
            Rng rng = new Rng(seed);
            INDArray r = GradCheck.randomLike(out.value(), rng);
            out.backward(r);
            int compared = 0;
            List<String> noGrad = new ArrayList<>();
            for (Map.Entry<String, Tensor> e : targets.entrySet()) {
                INDArray grad = e.getValue().grad();
                if (grad == null) {
                    noGrad.add(e.getKey());
                    continue;
                }
                INDArray x = values.get(e.getKey());
                long[] shape = x.shape();
                String what = name + ": " + e.getKey();
                for (long idx : pick(x.length(), rng)) {
                    GradCheck.checkElement(what, x, grad, GradCheck.unravel(idx, shape), h, absTol, relTol,
                            () -> GradCheck.projectedLoss(fn, inputs, r));
                    compared++;
                }
            }
            if (!noGrad.isEmpty()) {
                throw new AssertionError(name + ": no gradient for " + noGrad);
            }
            return compared;
        }

        /** Its own fixed-seed subset (not GradCheck's), so the elements these checks compare stay the ones they always were. */
        private long[] pick(long n, Rng rng) {
            if (n <= maxElements) {
                long[] all = new long[(int) n];
                for (int i = 0; i < all.length; i++) {
                    all[i] = i;
                }
                return all;
            }
            java.util.Set<Long> chosen = new java.util.LinkedHashSet<>();
            while (chosen.size() < maxElements) {
                chosen.add((long) (rng.nextDouble() * n));
            }
            return chosen.stream().mapToLong(Long::longValue).toArray();
        }
    }

    static Check gradCheck(String name, Module module, Function<Tensor[], Tensor> fn, INDArray... inputs) {
        return new Check(name, module, fn, inputs);
    }
}
