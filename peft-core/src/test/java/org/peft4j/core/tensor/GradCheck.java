package org.peft4j.core.tensor;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.function.DoubleSupplier;
import java.util.function.Function;

/**
 * Numerical gradient check in double precision, shared by every module's tests (peft-core
 * test-jar).
 *
 * <p>The function under test maps input tensors to an output of any shape. The check projects
 * the output onto a scalar with a fixed-seed random array R ({@code L = Σ out·R}), runs
 * {@code out.backward(R)} (the gradient of L with respect to out is R), and compares every
 * analytic input gradient element (or a fixed-seed random subset of at most
 * {@link #maxElements} per input) with the central difference
 * {@code (L(x+h) − L(x−h)) / 2h}. An element passes when
 * {@code |analytic − numeric| ≤ absTol + relTol·max(|analytic|, |numeric|)}.
 *
 * <p>Defaults: h = 1e-6, absTol = 1e-6, relTol = 1e-4. Inputs must be DOUBLE (they may be
 * non-contiguous views: the perturbation writes through the view).
 *
 * <pre>{@code
 * GradCheck.of("matmul", in -> Ops.matmul(in[0], in[1]), a, b).check();
 * }</pre>
 */
public final class GradCheck {

    /** The function under test. */
    @FunctionalInterface
    public interface Fn extends Function<Tensor[], Tensor> {
    }

    private final String name;
    private final Fn fn;
    private final INDArray[] inputs;
    private boolean[] requiresGrad;
    private double h = 1e-6;
    private double absTol = 1e-6;
    private double relTol = 1e-4;
    private int maxElements = Integer.MAX_VALUE;
    private long seed = 1234L;

    private GradCheck(String name, Fn fn, INDArray... inputs) {
        this.name = name;
        this.fn = fn;
        this.inputs = inputs;
        this.requiresGrad = new boolean[inputs.length];
        Arrays.fill(requiresGrad, true);
        for (int i = 0; i < inputs.length; i++) {
            if (inputs[i].dataType() != DataType.DOUBLE) {
                throw new IllegalArgumentException("GradCheck " + name + ": input " + i + " must be DOUBLE, is "
                        + inputs[i].dataType());
            }
        }
    }

    public static GradCheck of(String name, Fn fn, INDArray... inputs) {
        return new GradCheck(name, fn, inputs);
    }

    /** Which inputs are variables (the others are constants whose gradient must stay null). */
    public GradCheck requiresGrad(boolean... flags) {
        if (flags.length != inputs.length) {
            throw new IllegalArgumentException("GradCheck " + name + ": " + flags.length + " flags for " + inputs.length + " inputs");
        }
        this.requiresGrad = flags.clone();
        return this;
    }

    public GradCheck step(double h) {
        this.h = h;
        return this;
    }

    public GradCheck tolerance(double absTol, double relTol) {
        this.absTol = absTol;
        this.relTol = relTol;
        return this;
    }

    /** Checks at most this many elements per input (a fixed-seed random subset). */
    public GradCheck maxElements(int maxElements) {
        this.maxElements = maxElements;
        return this;
    }

    public GradCheck seed(long seed) {
        this.seed = seed;
        return this;
    }

    /**
     * Runs the check; throws {@link AssertionError} naming the op, input index and element on
     * the first failure. Returns the largest error seen, scaled by the tolerance (≤ 1 passes).
     */
    public double check() {
        Tensor[] ts = new Tensor[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            ts[i] = requiresGrad[i] ? Tensor.variable(inputs[i]) : Tensor.constant(inputs[i]);
        }
        Tensor out = fn.apply(ts);
        if (out.value().dataType() != DataType.DOUBLE) {
            throw new AssertionError("GradCheck " + name + ": output dtype " + out.value().dataType() + " (ops must keep DOUBLE)");
        }
        Rng rng = new Rng(seed);
        INDArray r = randomLike(out.value(), rng);
        out.backward(r);

        double worst = 0;
        for (int i = 0; i < inputs.length; i++) {
            INDArray grad = ts[i].grad();
            if (!requiresGrad[i]) {
                if (grad != null) {
                    throw new AssertionError("GradCheck " + name + ": constant input " + i + " got a gradient");
                }
                continue;
            }
            if (grad == null) {
                throw new AssertionError("GradCheck " + name + ": input " + i + " got no gradient");
            }
            INDArray x = inputs[i];
            if (!Arrays.equals(grad.shape(), x.shape())) {
                throw new AssertionError("GradCheck " + name + ": input " + i + " gradient shape "
                        + Arrays.toString(grad.shape()) + " != input shape " + Arrays.toString(x.shape()));
            }
            if (grad.dataType() != DataType.DOUBLE) {
                throw new AssertionError("GradCheck " + name + ": input " + i + " gradient dtype " + grad.dataType());
            }
            long n = x.length();
            long[] elements = pick(n, rng);
            long[] shape = x.shape();
            String what = "GradCheck " + name + ": input " + i;
            for (long e : elements) {
                double scaledErr = checkElement(what, x, grad, unravel(e, shape), h, absTol, relTol,
                        () -> projectedLoss(fn, inputs, r));
                worst = Math.max(worst, scaledErr);
            }
        }
        return worst;
    }

    /**
     * Compares one analytic gradient element {@code grad[sub]} with the central difference
     * {@code (L(x+h) − L(x−h)) / 2h}, perturbing {@code x[sub]} in place (through a view too) and
     * restoring it. Fails with an {@link AssertionError} {@code "<what> element [..]: analytic ..
     * numeric .. (|diff| .. > ..)"} unless {@code |analytic − numeric| ≤ absTol + relTol·max(|analytic|, |numeric|)}.
     *
     * @param loss L at the current value of {@code x}
     * @return the error divided by the allowed error (≤ 1 passes)
     */
    public static double checkElement(String what, INDArray x, INDArray grad, long[] sub, double h, double absTol,
                                      double relTol, DoubleSupplier loss) {
        double orig = x.getDouble(sub);
        x.putScalar(sub, orig + h);
        double lp = loss.getAsDouble();
        x.putScalar(sub, orig - h);
        double lm = loss.getAsDouble();
        x.putScalar(sub, orig);
        double numeric = (lp - lm) / (2 * h);
        double analytic = grad.getDouble(sub);
        double err = Math.abs(analytic - numeric);
        double allowed = absTol + relTol * Math.max(Math.abs(analytic), Math.abs(numeric));
        if (!(err <= allowed)) {
            throw new AssertionError(String.format("%s element %s: analytic %.10g numeric %.10g (|diff| %.3g > %.3g)",
                    what, Arrays.toString(sub), analytic, numeric, err, allowed));
        }
        return err / allowed;
    }

    /** {@code L = Σ fn(inputs)·R} evaluated on constant inputs without recording a graph. */
    public static double projectedLoss(Function<Tensor[], Tensor> fn, INDArray[] inputs, INDArray r) {
        try (NoGrad ignored = NoGrad.enter()) {
            Tensor[] ts = new Tensor[inputs.length];
            for (int i = 0; i < inputs.length; i++) {
                ts[i] = Tensor.constant(inputs[i]);
            }
            INDArray v = fn.apply(ts).value();
            return v.castTo(DataType.DOUBLE).mul(r).sumNumber().doubleValue();
        }
    }

    private long[] pick(long n, Rng rng) {
        if (n <= maxElements) {
            long[] all = new long[(int) n];
            for (int i = 0; i < all.length; i++) all[i] = i;
            return all;
        }
        // partial Fisher-Yates over a virtual index range: distinct, fixed-seed
        java.util.Map<Long, Long> swapped = new java.util.HashMap<>();
        long[] out = new long[maxElements];
        for (int i = 0; i < maxElements; i++) {
            long j = i + (long) (rng.nextDouble() * (n - i));
            long vi = swapped.getOrDefault((long) i, (long) i);
            long vj = swapped.getOrDefault(j, j);
            swapped.put(j, vi);
            out[i] = vj;
        }
        return out;
    }

    /** A DOUBLE array of standard normal numbers with {@code like}'s shape. */
    public static INDArray randomLike(INDArray like, Rng rng) {
        return random(rng, like.shape());
    }

    /** A DOUBLE array of standard normal numbers drawn from {@code rng}. */
    public static INDArray random(Rng rng, long... shape) {
        long n = 1;
        for (long s : shape) n *= s;
        double[] v = new double[(int) n];
        for (int i = 0; i < v.length; i++) v[i] = rng.nextGaussian();
        return Nd4j.createFromArray(v).reshape('c', shape);
    }

    /** The c-order subscripts of flat {@code index} in {@code shape}. */
    public static long[] unravel(long index, long[] shape) {
        long[] sub = new long[shape.length];
        for (int d = shape.length - 1; d >= 0; d--) {
            sub[d] = index % shape[d];
            index /= shape[d];
        }
        return sub;
    }
}
