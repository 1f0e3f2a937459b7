package org.peft4j.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;

/**
 * {@code y = x·Wᵀ + b}: {@code x [..., in]} → {@code [..., out]}.
 *
 * <p>Parameters {@code weight} ({@code [out, in]}, PyTorch's layout) and optional {@code bias}
 * ({@code [out]}). With {@code fanInFanOut} the stored weight is {@code [in, out]} (GPT-2's
 * {@code Conv1D}, PEFT's {@code fan_in_fan_out}) and the forward computes {@code x·W} directly,
 * without a transposed copy.
 *
 * <p>A frozen weight never costs a weight-gradient matmul or a gradient buffer; the input
 * gradient is still computed when the input needs one (a LoRA layer deeper in the network).
 */
public class Linear extends Module implements LinearLayer {
    /**
     * Weight-gradient GEMMs run by {@code [in, out]} (fan-in-fan-out) layers; the {@code [out, in]}
     * ones are counted by {@link Ops#linearWeightGradMatmuls()}. Tests read both to prove that a
     * frozen weight costs no weight-gradient matmul.
     */
    private static final java.util.concurrent.atomic.AtomicLong IN_OUT_WEIGHT_GRAD_MATMULS = new java.util.concurrent.atomic.AtomicLong();

    private final int inFeatures;
    private final int outFeatures;
    private final boolean fanInFanOut;

    /** PyTorch's default initialisation: weight and bias uniform in {@code ±1/√in}. */
    public Linear(int inFeatures, int outFeatures, boolean bias, Rng rng) {
        this(inFeatures, outFeatures, bias, false, rng);
    }

    /**
     * PyTorch's default initialisation ({@code kaiming_uniform_(a=√5)}, i.e. weight uniform in
     * {@code ±1/√in}; bias uniform in {@code ±1/√in}), drawn from {@code rng} in storage order.
     * A null {@code rng} gives zeros (fast; for layers whose weights are loaded right after).
     */
    public Linear(int inFeatures, int outFeatures, boolean bias, boolean fanInFanOut, Rng rng) {
        if (inFeatures <= 0 || outFeatures <= 0) {
            throw new IllegalArgumentException("Linear needs positive sizes, got in=" + inFeatures + ", out=" + outFeatures);
        }
        this.inFeatures = inFeatures;
        this.outFeatures = outFeatures;
        this.fanInFanOut = fanInFanOut;
        double bound = 1.0 / Math.sqrt(inFeatures);
        long[] wShape = fanInFanOut ? new long[]{inFeatures, outFeatures} : new long[]{outFeatures, inFeatures};
        registerParameter("weight", new Parameter(rng == null ? Nd4j.zeros(DataType.FLOAT, wShape) : uniform(rng, bound, wShape)));
        if (bias) {
            registerParameter("bias", new Parameter(rng == null ? Nd4j.zeros(DataType.FLOAT, outFeatures) : uniform(rng, bound, outFeatures)));
        }
    }

    /**
     * Wraps existing values (weights read from a checkpoint). {@code weight} is {@code [out, in]},
     * or {@code [in, out]} when {@code fanInFanOut}; {@code bias} is {@code [out]} or null.
     */
    public Linear(INDArray weight, INDArray bias, boolean fanInFanOut) {
        if (weight == null || weight.rank() != 2) {
            throw new IllegalArgumentException("Linear weight must be 2-D, got "
                    + (weight == null ? "null" : Arrays.toString(weight.shape())));
        }
        this.fanInFanOut = fanInFanOut;
        this.inFeatures = (int) (fanInFanOut ? weight.size(0) : weight.size(1));
        this.outFeatures = (int) (fanInFanOut ? weight.size(1) : weight.size(0));
        if (bias != null && (bias.rank() != 1 || bias.size(0) != outFeatures)) {
            throw new IllegalArgumentException("Linear bias must be [" + outFeatures + "], got " + Arrays.toString(bias.shape()));
        }
        registerParameter("weight", new Parameter(weight));
        if (bias != null) {
            registerParameter("bias", new Parameter(bias));
        }
    }

    static INDArray uniform(Rng rng, double bound, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor too large to initialise: " + Arrays.toString(shape));
        }
        float[] data = new float[(int) n];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) ((2.0 * rng.nextDouble() - 1.0) * bound);
        }
        return Nd4j.create(data, shape, 'c');
    }

    @Override
    public int inFeatures() {
        return inFeatures;
    }

    @Override
    public int outFeatures() {
        return outFeatures;
    }

    /** True when the weight is stored {@code [in, out]} (GPT-2 Conv1D). */
    @Override
    public boolean isFanInFanOut() {
        return fanInFanOut;
    }

    /** {@code [out, in]}, or {@code [in, out]} when {@link #isFanInFanOut()}. */
    public Parameter weight() {
        return parameter("weight");
    }

    /** {@code [out]} or null. */
    @Override
    public Parameter bias() {
        return parameter("bias");
    }

    /** The live weight as {@code [out, in]}: the parameter's value, or its transposed view for Conv1D. */
    @Override
    public INDArray denseWeight() {
        INDArray w = weight().value();
        return fanInFanOut ? w.transpose() : w;
    }

    /** Writes {@code w [out, in]} into the weight in place (cast to its type), so tied users see it. */
    @Override
    public void setDenseWeight(INDArray w) {
        if (w.rank() != 2 || w.size(0) != outFeatures || w.size(1) != inFeatures) {
            throw new IllegalArgumentException("Linear(" + inFeatures + " -> " + outFeatures + ") takes a dense weight ["
                    + outFeatures + ", " + inFeatures + "], got " + Arrays.toString(w.shape()));
        }
        INDArray p = weight().value();
        INDArray v = fanInFanOut ? w.transpose() : w;
        p.assign(v.castTo(p.dataType()));
    }

    @Override
    public DataType weightDataType() {
        return weight().value().dataType();
    }

    @Override
    public Linear deepCopy() {
        Parameter b = bias();
        return withTrainingModeOf(new Linear(weight().value().dup('c'), b == null ? null : b.value().dup('c'), fanInFanOut));
    }

    /** Number of weight-gradient matmuls fan-in-fan-out layers have run in this JVM (monotonic). */
    public static long inOutWeightGradMatmuls() {
        return IN_OUT_WEIGHT_GRAD_MATMULS.get();
    }

    @Override
    public Tensor forward(Tensor x) {
        if (x.rank() < 1 || x.size(-1) != inFeatures) {
            throw new IllegalArgumentException("Linear(" + inFeatures + " -> " + outFeatures + ") got input "
                    + Arrays.toString(x.shape()) + "; last axis must be " + inFeatures);
        }
        if (!fanInFanOut) {
            return Ops.linear(x, weight(), bias());
        }
        return linearInOut(x, weight(), bias());
    }

    /**
     * {@code x·W + b} for {@code W [in, out]}: one GEMM on the {@code [N, in]} view of x, no
     * transposed weight copy. Backward: {@code dx = dy·Wᵀ}, {@code dW = xᵀ·dy} (only when W is
     * trainable), {@code db = Σ dy}.
     */
    static Tensor linearInOut(Tensor x, Tensor w, Tensor b) {
        final long in = w.size(0);
        final long out = w.size(1);
        final INDArray xv = x.value();
        final DataType dt = xv.dataType();
        if (w.value().dataType() != dt) {
            throw new IllegalArgumentException("Linear input is " + dt + " but weight is " + w.value().dataType());
        }
        final long n = xv.length() / in;
        final long[] xShape = xv.shape();
        final long[] yShape = xShape.clone();
        yShape[yShape.length - 1] = out;
        final INDArray x2 = xv.reshape('c', n, in);
        final INDArray y = Nd4j.createUninitialized(dt, n, out);
        Nd4j.gemm(x2, w.value(), y, false, false, 1.0, 0.0);
        if (b != null) {
            y.addiRowVector(b.value());
        }
        return Tensor.fromOp(y.reshape('c', yShape), g -> {
            INDArray g2 = g.reshape('c', n, out);
            if (x.requiresGrad()) {
                INDArray dx = Nd4j.createUninitialized(dt, n, in);
                Nd4j.gemm(g2, w.value(), dx, false, true, 1.0, 0.0);
                x.accumulateGrad(dx.reshape('c', xShape));
            }
            if (w.requiresGrad()) {
                IN_OUT_WEIGHT_GRAD_MATMULS.incrementAndGet();
                INDArray dw = Nd4j.createUninitialized(dt, in, out);
                Nd4j.gemm(x2, g2, dw, true, false, 1.0, 0.0);
                w.accumulateGrad(dw);
            }
            if (b != null && b.requiresGrad()) {
                b.accumulateGrad(g2.sum(0));
            }
        }, x, w, b);
    }

    @Override
    protected String describe() {
        return "Linear(" + inFeatures + " -> " + outFeatures + (bias() != null ? ", bias" : "")
                + (fanInFanOut ? ", fan_in_fan_out" : "") + ")";
    }
}
