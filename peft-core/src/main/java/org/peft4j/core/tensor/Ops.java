package org.peft4j.core.tensor;

import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.api.ops.impl.reduce.longer.MatchCondition;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.AddOp;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.DivOp;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.MulOp;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.SubOp;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Erf;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.indexing.conditions.Conditions;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Every differentiable operation, as static functions in one place. Each returns a new
 * {@link Tensor} built with {@link Tensor#fromOp} whose closure accumulates gradients into the
 * inputs that require them (and computes nothing for inputs that do not: a frozen weight
 * gets no weight-gradient matmul). Inputs may be non-contiguous views (permuted, sliced).
 *
 * <p>Broadcasting follows numpy rules; the backward pass sums gradients back to each input's
 * shape. Axis arguments may be negative (counted from the end).
 *
 * <p>Every op keeps the data type of its (first) input: FLOAT in production, DOUBLE in the
 * numerical gradient checks. Other inputs of a different floating type are cast to it.
 *
 * <p>Implementation rules (see /work/shared/ND4J-NOTES.md): matrix products go through
 * {@code Nd4j.gemm} (2-D) or the rank-3/4 {@link Mmul} op with transpose flags into
 * preallocated outputs, never through explicit transposed copies; ND4J's GELU ops are not used
 * (they are approximations), exact GELU is composed from {@link Erf}.
 */
public final class Ops {
    private Ops() {
    }

    /** How a loss reduces over its elements. */
    public enum Reduction { MEAN, SUM, NONE }

    /** Target value that {@link #crossEntropy} skips (PyTorch's default {@code ignore_index}). */
    public static final int IGNORE_INDEX = -100;

    private static final double INV_SQRT2 = 1.0 / Math.sqrt(2.0);
    private static final double INV_SQRT_2PI = 1.0 / Math.sqrt(2.0 * Math.PI);
    private static final double SQRT_2_OVER_PI = Math.sqrt(2.0 / Math.PI);
    private static final double GELU_TANH_C = 0.044715;

    /**
     * Counts weight-gradient GEMMs performed by {@link #linear}. Tests read it to prove that a
     * frozen weight costs no weight-gradient matmul.
     */
    private static final AtomicLong LINEAR_WEIGHT_GRAD_MATMULS = new AtomicLong();

    /** Number of weight-gradient matmuls {@link #linear} has run in this JVM (monotonic). */
    public static long linearWeightGradMatmuls() {
        return LINEAR_WEIGHT_GRAD_MATMULS.get();
    }

    // ---- matrix products -------------------------------------------------------------

    /** {@code a·b}: 2-D {@code [m,k]·[k,n]}, or batched over equal leading dims (rank 3 or 4). */
    public static Tensor matmul(Tensor a, Tensor b) {
        return matmul(a, b, false, false);
    }

    /**
     * {@code op(a)·op(b)} where op transposes the last two axes when its flag is set.
     * Supported: both rank 2; both rank 3 or both rank 4 with equal leading dims; or a of rank 3/4
     * with b of rank 2 ({@code [B,T,in]·[in,out]}, b shared across the batch).
     */
    public static Tensor matmul(Tensor a, Tensor b, boolean transA, boolean transB) {
        INDArray av = a.value();
        INDArray bv = sameType(b.value(), av.dataType());
        int ra = av.rank();
        int rb = bv.rank();
        if (ra < 2 || ra > 4 || rb < 2 || rb > 4 || (ra != rb && rb != 2)) {
            throw new IllegalArgumentException("Ops.matmul: unsupported ranks, a " + shp(av) + " b " + shp(bv)
                    + " (need equal ranks 2..4, or a rank 3/4 with b rank 2)");
        }
        long m = av.size(transA ? ra - 1 : ra - 2);
        long ka = av.size(transA ? ra - 2 : ra - 1);
        long kb = bv.size(transB ? rb - 1 : rb - 2);
        long n = bv.size(transB ? rb - 2 : rb - 1);
        if (ka != kb) {
            throw new IllegalArgumentException("Ops.matmul: inner dimensions differ: a " + shp(av)
                    + (transA ? "ᵀ" : "") + " · b " + shp(bv) + (transB ? "ᵀ" : "") + " (" + ka + " vs " + kb + ")");
        }
        if (ra == rb) {
            for (int i = 0; i < ra - 2; i++) {
                if (av.size(i) != bv.size(i)) {
                    throw new IllegalArgumentException("Ops.matmul: batch dimensions differ: a " + shp(av) + " b " + shp(bv));
                }
            }
            long[] outShape = av.shape().clone();
            outShape[ra - 2] = m;
            outShape[ra - 1] = n;
            INDArray out = Nd4j.createUninitialized(av.dataType(), outShape);
            mm(av, bv, out, transA, transB, 0.0);
            final INDArray bf = bv;
            return Tensor.fromOp(out, g -> {
                if (a.requiresGrad()) {
                    INDArray da = Nd4j.createUninitialized(av.dataType(), av.shape());
                    if (!transA) {
                        mm(g, bf, da, false, !transB, 0.0);       // dA = dC·op(B)ᵀ
                    } else {
                        mm(bf, g, da, transB, true, 0.0);         // dA = op(B)·dCᵀ
                    }
                    own(a, da);
                }
                if (b.requiresGrad()) {
                    INDArray db = Nd4j.createUninitialized(av.dataType(), bf.shape());
                    if (!transB) {
                        mm(av, g, db, !transA, false, 0.0);       // dB = op(A)ᵀ·dC
                    } else {
                        mm(g, av, db, true, transA, 0.0);         // dB = dCᵀ·op(A)
                    }
                    own(b, db);
                }
            }, a, b);
        }
        // a batched [..., m, k] against a shared 2-D b: fold the batch into the GEMM rows.
        long[] aEffShape = av.shape().clone();
        aEffShape[ra - 2] = m;
        aEffShape[ra - 1] = ka;
        INDArray aEff = transA ? av.swapAxes(ra - 2, ra - 1) : av;
        long rows = av.length() / ka;
        INDArray a2 = aEff.reshape('c', rows, ka);   // a view when contiguous, else one copy
        INDArray out2 = Nd4j.createUninitialized(av.dataType(), rows, n);
        Nd4j.gemm(a2, bv, out2, false, transB, 1.0, 0.0);
        long[] outShape = aEffShape.clone();
        outShape[ra - 1] = n;
        INDArray out = out2.reshape('c', outShape);
        final INDArray bf = bv;
        return Tensor.fromOp(out, g -> {
            INDArray g2 = g.reshape('c', rows, n);
            if (a.requiresGrad()) {
                INDArray da2 = Nd4j.createUninitialized(av.dataType(), rows, ka);
                Nd4j.gemm(g2, bf, da2, false, !transB, 1.0, 0.0);
                INDArray da = da2.reshape('c', aEffShape);
                if (transA) {
                    a.accumulateGrad(da.swapAxes(ra - 2, ra - 1));
                } else {
                    own(a, da);
                }
            }
            if (b.requiresGrad()) {
                INDArray db = Nd4j.createUninitialized(av.dataType(), bf.shape());
                if (!transB) {
                    Nd4j.gemm(a2, g2, db, true, false, 1.0, 0.0);   // [k,n] = A2ᵀ·dC2
                } else {
                    Nd4j.gemm(g2, a2, db, true, false, 1.0, 0.0);   // [n,k] = dC2ᵀ·A2
                }
                own(b, db);
            }
        }, a, b);
    }

    /** out = op(x)·op(y) (+ beta·out), by GEMM for rank 2 and the batched Mmul op for rank 3/4. */
    private static void mm(INDArray x, INDArray y, INDArray out, boolean tx, boolean ty, double beta) {
        if (x.rank() == 2) {
            Nd4j.gemm(x, y, out, tx, ty, 1.0, beta);
        } else {
            Nd4j.exec(new Mmul(x, y, out, 1.0, beta,
                    MMulTranspose.builder().transposeA(tx).transposeB(ty).build()));
        }
    }

    /** {@code x·Wᵀ + b}: x {@code [..., in]}, weight {@code [out, in]}, bias {@code [out]} or null → {@code [..., out]}. */
    public static Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        INDArray xv = x.value();
        DataType dt = xv.dataType();
        INDArray wv = sameType(weight.value(), dt);
        if (wv.rank() != 2 || xv.rank() < 1 || xv.size(xv.rank() - 1) != wv.size(1)) {
            throw new IllegalArgumentException("Ops.linear: input " + shp(xv) + " does not match weight "
                    + shp(wv) + " (need x [..., in] and weight [out, in])");
        }
        long in = wv.size(1);
        long outF = wv.size(0);
        INDArray bv = null;
        if (bias != null) {
            bv = sameType(bias.value(), dt);
            if (bv.length() != outF || bv.rank() != 1) {
                throw new IllegalArgumentException("Ops.linear: bias " + shp(bv) + " does not match weight " + shp(wv));
            }
        }
        long rows = xv.length() / in;
        INDArray x2 = xv.reshape('c', rows, in);           // [N, in]
        INDArray y2 = Nd4j.createUninitialized(dt, rows, outF);
        Nd4j.gemm(x2, wv, y2, false, true, 1.0, 0.0);       // [N, out] = x·Wᵀ
        if (bv != null) {
            y2.addiRowVector(bv);
        }
        long[] outShape = xv.shape().clone();
        outShape[outShape.length - 1] = outF;
        INDArray y = y2.reshape('c', outShape);
        final INDArray wf = wv;
        return Tensor.fromOp(y, g -> {
            INDArray g2 = g.reshape('c', rows, outF);         // [N, out]
            if (x.requiresGrad()) {
                INDArray dx2 = Nd4j.createUninitialized(dt, rows, in);
                Nd4j.gemm(g2, wf, dx2, false, false, 1.0, 0.0);   // dx = dy·W
                own(x, dx2.reshape('c', xv.shape()));
            }
            if (weight.requiresGrad()) {
                LINEAR_WEIGHT_GRAD_MATMULS.incrementAndGet();
                INDArray acc = weight.ownedGrad();
                if (acc != null && acc.dataType() == dt && acc.ordering() == 'c') {
                    Nd4j.gemm(g2, x2, acc, true, false, 1.0, 1.0);    // dW += dyᵀ·x, no temporary
                } else {
                    INDArray dw = Nd4j.createUninitialized(dt, outF, in);
                    Nd4j.gemm(g2, x2, dw, true, false, 1.0, 0.0); // dW = dyᵀ·x
                    own(weight, dw);
                }
            }
            if (bias != null && bias.requiresGrad()) {
                own(bias, Kernels.usable(g2) ? Nd4j.createFromArray(Kernels.columnSums(g2, (int) outF)) : g2.sum(0));
            }
        }, x, weight, bias);
    }

    // ---- element-wise with broadcasting ------------------------------------------------

    private enum Bin { ADD, SUB, MUL, DIV }

    public static Tensor add(Tensor a, Tensor b) {
        return binaryOp("add", Bin.ADD, a, b);
    }

    public static Tensor sub(Tensor a, Tensor b) {
        return binaryOp("sub", Bin.SUB, a, b);
    }

    public static Tensor mul(Tensor a, Tensor b) {
        return binaryOp("mul", Bin.MUL, a, b);
    }

    public static Tensor div(Tensor a, Tensor b) {
        return binaryOp("div", Bin.DIV, a, b);
    }

    private static Tensor binaryOp(String name, Bin kind, Tensor a, Tensor b) {
        INDArray av = a.value();
        INDArray bv = sameType(b.value(), av.dataType());
        long[] outShape = broadcastShape("Ops." + name, av.shape(), bv.shape());
        INDArray out = bin(kind, av, bv, outShape);
        return Tensor.fromOp(out, g -> {
            switch (kind) {
                case ADD -> {
                    if (a.requiresGrad()) a.accumulateGrad(reduceTo(g, av.shape()));
                    if (b.requiresGrad()) b.accumulateGrad(castLike(reduceTo(g, bv.shape()), b.value()));
                }
                case SUB -> {
                    if (a.requiresGrad()) a.accumulateGrad(reduceTo(g, av.shape()));
                    if (b.requiresGrad()) own(b, reduceTo(g, bv.shape()).neg());
                }
                case MUL -> {
                    if (a.requiresGrad()) own(a, reduceTo(bin(Bin.MUL, g, bv, outShape), av.shape()));
                    if (b.requiresGrad()) own(b, reduceTo(bin(Bin.MUL, g, av, outShape), bv.shape()));
                }
                case DIV -> {
                    if (a.requiresGrad()) own(a, reduceTo(bin(Bin.DIV, g, bv, outShape), av.shape()));
                    if (b.requiresGrad()) {
                        // d(a/b)/db = -out/b
                        INDArray t = bin(Bin.MUL, g, out, outShape);
                        binInto(Bin.DIV, t, bv, t);
                        own(b, reduceTo(t, bv.shape()).negi());
                    }
                }
                default -> throw new IllegalStateException(kind.name());
            }
        }, a, b);
    }

    // ---- scalar and unary ---------------------------------------------------------------

    public static Tensor add(Tensor a, double s) {
        INDArray out = a.value().add(s);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) a.accumulateGrad(g);
        }, a);
    }

    public static Tensor mul(Tensor a, double s) {
        INDArray out = a.value().mul(s);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) own(a, g.mul(s));
        }, a);
    }

    public static Tensor pow(Tensor a, double exponent) {
        INDArray av = a.value();
        INDArray out = Transforms.pow(av, exponent, true);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) {
                INDArray d = exponent == 2.0 ? av.mul(2.0) : Transforms.pow(av, exponent - 1.0, true).muli(exponent);
                own(a, d.muli(g));
            }
        }, a);
    }

    public static Tensor neg(Tensor a) {
        INDArray out = a.value().neg();
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) own(a, g.neg());
        }, a);
    }

    public static Tensor exp(Tensor a) {
        INDArray out = Transforms.exp(a.value(), true);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) own(a, g.mul(out));
        }, a);
    }

    public static Tensor log(Tensor a) {
        INDArray av = a.value();
        INDArray out = Transforms.log(av, true);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) own(a, g.div(av));
        }, a);
    }

    public static Tensor sqrt(Tensor a) {
        INDArray out = Transforms.sqrt(a.value(), true);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) own(a, g.div(out).muli(0.5));
        }, a);
    }

    // ---- reductions ----------------------------------------------------------------------

    /** Sum of all elements (a scalar). */
    public static Tensor sum(Tensor a) {
        INDArray av = a.value();
        INDArray out = Nd4j.scalar(av.dataType(), av.sumNumber().doubleValue());
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) own(a, Nd4j.valueArrayOf(av.shape(), g.getDouble(0), av.dataType()));
        }, a);
    }

    /** Sum over {@code axes} (all axes when none are given). */
    public static Tensor sum(Tensor a, boolean keepDims, int... axes) {
        return reduce("sum", a, keepDims, axes, false);
    }

    /** Mean of all elements (a scalar). */
    public static Tensor mean(Tensor a) {
        INDArray av = a.value();
        long n = av.length();
        INDArray out = Nd4j.scalar(av.dataType(), av.sumNumber().doubleValue() / n);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) own(a, Nd4j.valueArrayOf(av.shape(), g.getDouble(0) / n, av.dataType()));
        }, a);
    }

    /** Mean over {@code axes} (all axes when none are given). */
    public static Tensor mean(Tensor a, boolean keepDims, int... axes) {
        return reduce("mean", a, keepDims, axes, true);
    }

    private static Tensor reduce(String name, Tensor a, boolean keepDims, int[] axes, boolean mean) {
        INDArray av = a.value();
        int r = av.rank();
        int[] ax = axes == null || axes.length == 0 ? allAxes(r) : normAxes("Ops." + name, av, axes);
        long count = 1;
        long[] keepShape = av.shape().clone();
        for (int d : ax) {
            count *= keepShape[d];
            keepShape[d] = 1;
        }
        INDArray out = av.sum(keepDims, ax);
        if (mean) {
            out.divi(count);
        }
        final double scale = mean ? 1.0 / count : 1.0;
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) {
                INDArray gk = g.reshape('c', keepShape);
                INDArray full = expandTo(gk, av.shape());
                if (mean) {
                    full = full == gk ? full.mul(scale) : full.muli(scale);
                }
                if (full == g || full == gk) {
                    a.accumulateGrad(full);
                } else {
                    own(a, full);
                }
            }
        }, a);
    }

    // ---- shape ---------------------------------------------------------------------------

    /** Reshape in c order; one dimension may be -1. Non-contiguous inputs are copied first. */
    public static Tensor reshape(Tensor a, long... shape) {
        INDArray av = a.value();
        long[] target = resolveShape(av, shape);
        INDArray out = av.reshape('c', target);
        long[] orig = av.shape();
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) a.accumulateGrad(g.reshape('c', orig));
        }, a);
    }

    /** Reorders axes (a view). */
    public static Tensor permute(Tensor a, int... axes) {
        INDArray av = a.value();
        int r = av.rank();
        if (axes.length != r) {
            throw new IllegalArgumentException("Ops.permute: " + Arrays.toString(axes) + " is not a permutation of the axes of " + shp(av));
        }
        int[] p = new int[r];
        boolean[] seen = new boolean[r];
        for (int i = 0; i < r; i++) {
            int d = axes[i] < 0 ? axes[i] + r : axes[i];
            if (d < 0 || d >= r || seen[d]) {
                throw new IllegalArgumentException("Ops.permute: " + Arrays.toString(axes) + " is not a permutation of the axes of " + shp(av));
            }
            seen[d] = true;
            p[i] = d;
        }
        int[] inv = new int[r];
        for (int i = 0; i < r; i++) {
            inv[p[i]] = i;
        }
        INDArray out = av.permute(p);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) a.accumulateGrad(g.permute(inv));
        }, a);
    }

    /** Swaps two axes (a view). */
    public static Tensor transpose(Tensor a, int axis1, int axis2) {
        int r = a.rank();
        int d1 = normAxis("Ops.transpose", a.value(), axis1);
        int d2 = normAxis("Ops.transpose", a.value(), axis2);
        int[] p = allAxes(r);
        p[d1] = d2;
        p[d2] = d1;
        return permute(a, p);
    }

    /** Elements {@code [start, end)} along {@code axis}. */
    public static Tensor slice(Tensor a, int axis, long start, long end) {
        INDArray av = a.value();
        int d = normAxis("Ops.slice", av, axis);
        long size = av.size(d);
        if (start < 0 || end > size || start >= end) {
            throw new IllegalArgumentException("Ops.slice: [" + start + ", " + end + ") is out of range for axis " + axis
                    + " of " + shp(av));
        }
        INDArray out = sliceView(av, d, start, end);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) {
                INDArray full = Nd4j.zeros(av.dataType(), av.shape());
                sliceView(full, d, start, end).assign(g);
                own(a, full);
            }
        }, a);
    }

    /** Joins tensors along {@code axis}; all other dimensions must agree. */
    public static Tensor concat(int axis, Tensor... parts) {
        if (parts == null || parts.length == 0) {
            throw new IllegalArgumentException("Ops.concat: no tensors given");
        }
        INDArray first = parts[0].value();
        int d = normAxis("Ops.concat", first, axis);
        DataType dt = first.dataType();
        INDArray[] vals = new INDArray[parts.length];
        long[] offsets = new long[parts.length + 1];
        for (int i = 0; i < parts.length; i++) {
            INDArray v = sameType(parts[i].value(), dt);
            if (v.rank() != first.rank()) {
                throw new IllegalArgumentException("Ops.concat: part " + i + " " + shp(v) + " has a different rank than " + shp(first));
            }
            for (int k = 0; k < v.rank(); k++) {
                if (k != d && v.size(k) != first.size(k)) {
                    throw new IllegalArgumentException("Ops.concat: part " + i + " " + shp(v) + " does not match "
                            + shp(first) + " outside axis " + axis);
                }
            }
            vals[i] = v;
            offsets[i + 1] = offsets[i] + v.size(d);
        }
        INDArray out;
        if (parts.length == 1) {
            out = vals[0].dup('c');
        } else {
            long[] outShape = first.shape().clone();
            outShape[d] = offsets[parts.length];
            out = Nd4j.createUninitialized(dt, outShape);
            for (int i = 0; i < parts.length; i++) {
                sliceView(out, d, offsets[i], offsets[i + 1]).assign(vals[i]);
            }
        }
        return Tensor.fromOp(out, g0 -> {
            // a gradient that is itself a view (this concat's output sliced by another concat)
            // can come back from ND4J's get() with its unit dimensions dropped: slice a copy
            INDArray g = g0.isView() ? g0.dup('c') : g0;
            for (int i = 0; i < parts.length; i++) {
                if (parts[i].requiresGrad()) {
                    parts[i].accumulateGrad(castLike(sliceView(g, d, offsets[i], offsets[i + 1]), parts[i].value()));
                }
            }
        }, parts);
    }

    /**
     * Picks entries along {@code axis} by integer index (repeats allowed; gradients add up).
     * {@code indices} (any integral-valued array; it is flattened) gives the new size of that axis.
     */
    public static Tensor indexSelect(Tensor a, int axis, INDArray indices) {
        INDArray av = a.value();
        int d = normAxis("Ops.indexSelect", av, axis);
        int r = av.rank();
        long n = av.size(d);
        int[] idx = toIndices("Ops.indexSelect", indices, n);
        // move the axis to the front, view the rest as one row: [n, R]
        int[] perm = new int[r];
        perm[0] = d;
        for (int i = 0, k = 1; i < r; i++) {
            if (i != d) perm[k++] = i;
        }
        int[] inv = new int[r];
        for (int i = 0; i < r; i++) inv[perm[i]] = i;
        INDArray front = d == 0 ? av : av.permute(perm);
        long rowLen = n == 0 ? 0 : av.length() / n;
        INDArray a2 = front.reshape('c', n, rowLen);
        INDArray picked = Nd4j.pullRows(a2, 1, idx);            // [m, R]
        long[] frontShape = front.shape().clone();
        frontShape[0] = idx.length;
        INDArray out = picked.reshape('c', frontShape);
        if (d != 0) out = out.permute(inv);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) {
                INDArray gFront = d == 0 ? g : g.permute(perm);
                INDArray g2 = gFront.reshape('c', idx.length, rowLen);
                INDArray da2 = Nd4j.zeros(av.dataType(), n, rowLen);
                scatterAddRows(da2, idx, g2);
                INDArray da = da2.reshape('c', front.shape());
                if (d == 0) {
                    own(a, da);
                } else {
                    a.accumulateGrad(da.permute(inv));
                }
            }
        }, a);
    }

    /** Rows of {@code weight [vocab, dim]} for integer ids of any shape → {@code ids.shape + [dim]}. */
    public static Tensor embedding(Tensor weight, INDArray ids) {
        INDArray wv = weight.value();
        if (wv.rank() != 2) {
            throw new IllegalArgumentException("Ops.embedding: weight must be [vocab, dim], got " + shp(wv));
        }
        long vocab = wv.size(0);
        long dim = wv.size(1);
        int[] idx = toIndices("Ops.embedding", ids, vocab);
        INDArray rows = Nd4j.pullRows(wv, 1, idx);               // [m, dim]
        long[] outShape = Arrays.copyOf(ids.shape(), ids.rank() + 1);
        outShape[ids.rank()] = dim;
        INDArray out = rows.reshape('c', outShape);
        return Tensor.fromOp(out, g -> {
            if (weight.requiresGrad()) {
                INDArray g2 = g.reshape('c', idx.length, dim);
                INDArray dw = Nd4j.zeros(wv.dataType(), vocab, dim);
                scatterAddRows(dw, idx, g2);
                own(weight, dw);
            }
        }, weight);
    }

    /** {@code value} where {@code mask} (broadcastable, non-zero = fill) is set, else {@code a}. */
    public static Tensor maskedFill(Tensor a, INDArray mask, double value) {
        INDArray av = a.value();
        long[] bs = broadcastShape("Ops.maskedFill", av.shape(), mask.shape());
        if (!Arrays.equals(bs, av.shape())) {
            throw new IllegalArgumentException("Ops.maskedFill: mask " + shp(mask) + " does not broadcast to input " + shp(av));
        }
        DataType dt = av.dataType();
        // mask-shaped helpers (small: e.g. [B,1,1,T] against scores [B,H,T,T])
        INDArray fillBool = mask.dataType() == DataType.BOOL ? mask : mask.neq(0.0);
        INDArray keep = fillBool.castTo(dt).rsubi(1.0);                     // 1 where a is kept
        INDArray out;
        long nonFinite = Nd4j.getExecutioner().exec(new MatchCondition(av, Conditions.notFinite())).getLong(0);
        if (nonFinite == 0) {
            // two broadcast passes: a·keep + (value where filled, else 0); exact because a is finite
            INDArray fillValues = Nd4j.zeros(dt, fillBool.shape()).putWhereWithMask(fillBool, value);
            out = bin(Bin.MUL, av, keep, av.shape());
            binInto(Bin.ADD, out, fillValues, out);
        } else {
            // a holds ±inf/NaN (e.g. a mask applied twice): a true select, so no 0·inf = NaN
            INDArray fullBool = expandTo(keep, av.shape()).eq(0.0);
            out = av.putWhereWithMask(fullBool, value);
        }
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) own(a, bin(Bin.MUL, g, keep, av.shape()));
        }, a);
    }

    // ---- normalisation and softmax ---------------------------------------------------------

    /** Softmax over the last axis. */
    public static Tensor softmax(Tensor a) {
        INDArray av = a.value();
        requireRank("Ops.softmax", av, 1);
        long dim = av.size(av.rank() - 1);
        long rows = av.length() / dim;
        INDArray out;
        if (av.dataType() == DataType.FLOAT) {
            out = Nd4j.createUninitialized(av.dataType(), av.shape());
            Nd4j.exec((DynamicCustomOp) new SoftMax(av, out, av.rank() - 1));   // native, max-shifted
        } else {
            // ND4J M2.1's native softmax returns NaN for DOUBLE rows whose maximum is very negative
            // (e.g. a fully masked row of -1e9), so other types use the max-shifted composition
            INDArray x2 = av.reshape('c', rows, dim).dup('c');                  // [rows, dim], own copy
            x2.subiColumnVector(x2.max(true, 1));
            Transforms.exp(x2, false);
            x2.diviColumnVector(x2.sum(true, 1));
            out = x2.reshape('c', av.shape());
        }
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) {
                INDArray y2 = out.reshape('c', rows, dim);
                INDArray g2 = g.reshape('c', rows, dim);
                INDArray s = g2.mul(y2).sum(true, 1);                   // [rows, 1]
                INDArray dx = g2.subColumnVector(s).muli(y2);          // y·(g − Σ g·y)
                own(a, dx.reshape('c', av.shape()));
            }
        }, a);
    }

    /** Log-softmax over the last axis. */
    public static Tensor logSoftmax(Tensor a) {
        INDArray av = a.value();
        requireRank("Ops.logSoftmax", av, 1);
        long dim = av.size(av.rank() - 1);
        long rows = av.length() / dim;
        INDArray out2 = logSoftmax2d(av.reshape('c', rows, dim));
        INDArray out = out2.reshape('c', av.shape());
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) {
                INDArray g2 = g.reshape('c', rows, dim);
                INDArray s = g2.sum(true, 1);
                INDArray dx = Transforms.exp(out2, true).muliColumnVector(s).rsubi(g2);   // g − softmax·Σg
                own(a, dx.reshape('c', av.shape()));
            }
        }, a);
    }

    /** Row-wise log-softmax of a 2-D array into a new array: x − max − log Σ exp(x − max). */
    private static INDArray logSoftmax2d(INDArray x2) {
        INDArray mx = x2.max(true, 1);
        INDArray sh = x2.subColumnVector(mx);
        INDArray lse = Transforms.log(Transforms.exp(sh, true).sum(true, 1), false);
        return sh.subiColumnVector(lse);
    }

    /** Layer norm over the last axis; gamma/beta {@code [dim]} (either may be null). */
    public static Tensor layerNorm(Tensor x, Tensor gamma, Tensor beta, double eps) {
        INDArray xv = x.value();
        requireRank("Ops.layerNorm", xv, 1);
        DataType dt = xv.dataType();
        long dim = xv.size(xv.rank() - 1);
        long rows = xv.length() / dim;
        INDArray gv = gamma == null ? null : checkVector("Ops.layerNorm", "gamma", sameType(gamma.value(), dt), dim, xv);
        INDArray bv = beta == null ? null : checkVector("Ops.layerNorm", "beta", sameType(beta.value(), dt), dim, xv);
        if (Kernels.usable(xv) && (gamma == null || gamma.value().dataType() == DataType.FLOAT)
                && (beta == null || beta.value().dataType() == DataType.FLOAT)) {
            // FLOAT: one fused pass per row (statistics, normalisation, affine) and one back
            return FusedOps.layerNormKernel(x, null, gamma, beta, eps);
        }
        INDArray x2 = xv.reshape('c', rows, dim);
        INDArray mu = x2.mean(true, 1);                                  // [N, 1]
        INDArray xhat = x2.subColumnVector(mu);                          // x − μ
        INDArray var = xhat.mul(xhat).mean(true, 1);
        INDArray rstd = Transforms.pow(var.addi(eps), -0.5, false);      // 1/√(σ² + ε), [N, 1]
        xhat.muliColumnVector(rstd);
        INDArray y2 = gv != null ? xhat.mulRowVector(gv) : xhat.dup();
        if (bv != null) {
            y2.addiRowVector(bv);
        }
        INDArray y = y2.reshape('c', xv.shape());
        return Tensor.fromOp(y, g -> {
            INDArray g2 = g.reshape('c', rows, dim);
            if (x.requiresGrad()) {
                INDArray dxhat = gv != null ? g2.mulRowVector(gv) : g2;
                INDArray m1 = dxhat.mean(true, 1);
                INDArray m2 = dxhat.mul(xhat).mean(true, 1);
                // dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))
                INDArray dx = xhat.mulColumnVector(m2).rsubi(dxhat).subiColumnVector(m1).muliColumnVector(rstd);
                own(x, dx.reshape('c', xv.shape()));
            }
            if (gamma != null && gamma.requiresGrad()) {
                own(gamma, g2.mul(xhat).sum(0));
            }
            if (beta != null && beta.requiresGrad()) {
                own(beta, g2.sum(0));
            }
        }, x, gamma, beta);
    }

    /** RMS norm over the last axis: {@code x / sqrt(mean(x²) + eps) * gamma} (gamma may be null). */
    public static Tensor rmsNorm(Tensor x, Tensor gamma, double eps) {
        INDArray xv = x.value();
        requireRank("Ops.rmsNorm", xv, 1);
        DataType dt = xv.dataType();
        long dim = xv.size(xv.rank() - 1);
        long rows = xv.length() / dim;
        INDArray gv = gamma == null ? null : checkVector("Ops.rmsNorm", "gamma", sameType(gamma.value(), dt), dim, xv);
        INDArray x2 = xv.reshape('c', rows, dim);
        INDArray r = Transforms.pow(x2.mul(x2).mean(true, 1).addi(eps), -0.5, false);   // [N, 1]
        INDArray xn = x2.mulColumnVector(r);
        INDArray y2 = gv != null ? xn.mulRowVector(gv) : xn;
        INDArray y = y2.reshape('c', xv.shape());
        return Tensor.fromOp(y, g -> {
            INDArray g2 = g.reshape('c', rows, dim);
            if (x.requiresGrad()) {
                INDArray dxn = gv != null ? g2.mulRowVector(gv) : g2;
                INDArray m = dxn.mul(xn).mean(true, 1);
                // dx = r·(dxn − xn·mean(dxn·xn))
                INDArray dx = xn.mulColumnVector(m).rsubi(dxn).muliColumnVector(r);
                own(x, dx.reshape('c', xv.shape()));
            }
            if (gamma != null && gamma.requiresGrad()) {
                own(gamma, g2.mul(xn).sum(0));
            }
        }, x, gamma);
    }

    // ---- activations -------------------------------------------------------------------------

    /** Exact GELU, {@code 0.5·x·(1 + erf(x/√2))} (BERT's "gelu"). */
    public static Tensor gelu(Tensor a) {
        INDArray xv = a.value();
        if (Kernels.usable(xv)) {
            // FLOAT: one fused pass forward (x·Φ(x)) and one backward (g·(Φ(x) + x·φ(x))), nothing saved but x
            INDArray y = Nd4j.createUninitialized(DataType.FLOAT, xv.shape());
            Kernels.geluForward(xv, y);
            return Tensor.fromOp(y, g -> {
                if (a.requiresGrad()) {
                    INDArray dx = Nd4j.createUninitialized(DataType.FLOAT, xv.shape());
                    Kernels.geluBackward(xv, Kernels.usable(g) ? g : g.dup('c'), dx);
                    own(a, dx);
                }
            }, a);
        }
        INDArray cdf = xv.mul(INV_SQRT2);
        Nd4j.exec(new Erf(cdf, cdf));
        cdf.addi(1.0).muli(0.5);                                         // Φ(x)
        INDArray out = cdf.mul(xv);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) {
                // d/dx = Φ(x) + x·φ(x), φ(x) = exp(−x²/2)/√(2π)
                INDArray d = xv.mul(xv).muli(-0.5);
                Transforms.exp(d, false).muli(INV_SQRT_2PI).muli(xv).addi(cdf);
                own(a, d.muli(g));
            }
        }, a);
    }

    /** Tanh GELU, {@code 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))} (GPT-2's "gelu_new"). */
    public static Tensor geluTanh(Tensor a) {
        INDArray xv = a.value();
        INDArray x2 = xv.mul(xv);
        INDArray t = x2.mul(GELU_TANH_C).addi(1.0).muli(xv).muli(SQRT_2_OVER_PI);   // u
        Transforms.tanh(t, false);                                                      // tanh(u)
        INDArray out = t.add(1.0).muli(xv).muli(0.5);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) {
                // d/dx = 0.5(1+t) + 0.5x(1−t²)·√(2/π)(1 + 3c·x²)
                INDArray du = x2.mul(3.0 * GELU_TANH_C).addi(1.0).muli(SQRT_2_OVER_PI);
                INDArray sech2 = t.mul(t).rsubi(1.0);
                INDArray d = du.muli(sech2).muli(xv).muli(0.5).addi(t.add(1.0).muli(0.5));
                own(a, d.muli(g));
            }
        }, a);
    }

    /** SiLU (swish), {@code x·σ(x)}. */
    public static Tensor silu(Tensor a) {
        INDArray xv = a.value();
        INDArray s = Transforms.sigmoid(xv, true);
        INDArray out = s.mul(xv);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) {
                // σ(1 + x(1 − σ))
                INDArray d = s.rsub(1.0).muli(xv).addi(1.0).muli(s);
                own(a, d.muli(g));
            }
        }, a);
    }

    public static Tensor relu(Tensor a) {
        INDArray xv = a.value();
        INDArray mask = xv.gt(0.0).castTo(xv.dataType());
        INDArray out = xv.mul(mask);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) own(a, g.mul(mask));
        }, a);
    }

    public static Tensor tanh(Tensor a) {
        INDArray out = Transforms.tanh(a.value(), true);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) own(a, out.mul(out).rsubi(1.0).muli(g));
        }, a);
    }

    public static Tensor sigmoid(Tensor a) {
        INDArray out = Transforms.sigmoid(a.value(), true);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) own(a, out.rsub(1.0).muli(out).muli(g));
        }, a);
    }

    /**
     * Inverted dropout: zero with probability p, scale survivors by 1/(1-p); identity when not training or p = 0.
     * The mask is drawn from {@code rng} in c order (one {@code nextFloat} per element), so the same seed gives
     * the same mask.
     */
    public static Tensor dropout(Tensor a, double p, boolean training, Rng rng) {
        if (!(p >= 0.0 && p <= 1.0)) {
            throw new IllegalArgumentException("Ops.dropout: p must be in [0, 1], got " + p);
        }
        if (!training || p == 0.0) {
            return a;
        }
        if (rng == null) {
            throw new IllegalArgumentException("Ops.dropout: training with p = " + p + " needs an Rng");
        }
        INDArray av = a.value();
        DataType dt = av.dataType();
        long n = av.length();
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("Ops.dropout: input too large " + shp(av));
        }
        if (Kernels.usable(av)) {
            return dropoutFloat(a, p, rng);
        }
        INDArray mask;
        if (dt == DataType.DOUBLE) {
            double keep = p >= 1.0 ? 0.0 : 1.0 / (1.0 - p);
            double[] m = new double[(int) n];
            for (int i = 0; i < m.length; i++) {
                m[i] = rng.nextFloat() < p ? 0.0 : keep;
            }
            mask = Nd4j.createFromArray(m);
        } else {
            float keep = p >= 1.0 ? 0f : (float) (1.0 / (1.0 - p));
            float[] m = new float[(int) n];
            for (int i = 0; i < m.length; i++) {
                m[i] = rng.nextFloat() < p ? 0f : keep;
            }
            mask = Nd4j.createFromArray(m);
            if (dt != DataType.FLOAT) {
                mask = mask.castTo(dt);
            }
        }
        INDArray maskNd = mask.reshape('c', av.shape());
        INDArray out = av.mul(maskNd);
        return Tensor.fromOp(out, g -> {
            if (a.requiresGrad()) own(a, g.mul(maskNd));
        }, a);
    }

    /**
     * FLOAT dropout in chunks: the same mask as the generic path (one {@code rng.nextFloat()} per
     * element in c order, dropped when below p), kept as one bit per element on the heap instead
     * of a float array, applied in the same pass that draws it.
     */
    private static Tensor dropoutFloat(Tensor a, double p, Rng rng) {
        INDArray av = a.value();
        final int n = (int) av.length();
        final float keep = p >= 1.0 ? 0f : (float) (1.0 / (1.0 - p));
        final long[] bits = new long[(n + 63) >>> 6];           // 1 = dropped
        final INDArray out = Nd4j.createUninitialized(DataType.FLOAT, av.shape());
        final java.nio.FloatBuffer in = Kernels.buf(av);
        final java.nio.FloatBuffer ob = Kernels.buf(out);
        final int io = Kernels.off(av);
        final int oo = Kernels.off(out);
        float[] v = new float[Math.min(n, 4096)];
        for (int s = 0; s < n; s += v.length) {
            int len = Math.min(v.length, n - s);
            in.get(io + s, v, 0, len);
            for (int i = 0; i < len; i++) {
                if (rng.nextFloat() < p) {
                    v[i] *= 0f;                                   // as x·0 (NaN stays NaN)
                    bits[(s + i) >>> 6] |= 1L << ((s + i) & 63);
                } else {
                    v[i] *= keep;
                }
            }
            ob.put(oo + s, v, 0, len);
        }
        return Tensor.fromOp(out, g -> {
            if (!a.requiresGrad()) {
                return;
            }
            INDArray gc = Kernels.usable(g) ? g : g.dup('c');
            INDArray dx = Nd4j.createUninitialized(DataType.FLOAT, av.shape());
            java.nio.FloatBuffer gb = Kernels.buf(gc);
            java.nio.FloatBuffer db = Kernels.buf(dx);
            int go = Kernels.off(gc);
            int dxo = Kernels.off(dx);
            float[] w = new float[Math.min(n, 4096)];
            for (int s = 0; s < n; s += w.length) {
                int len = Math.min(w.length, n - s);
                gb.get(go + s, w, 0, len);
                for (int i = 0; i < len; i++) {
                    int k = s + i;
                    w[i] *= (bits[k >>> 6] & (1L << (k & 63))) != 0 ? 0f : keep;
                }
                db.put(dxo + s, w, 0, len);
            }
            own(a, dx);
        }, a);
    }

    /**
     * Rotary position embedding in the Hugging Face layout ({@code x·cos + rotate_half(x)·sin},
     * rotate_half(x) = concat(-x2, x1) of the two halves of the last axis). x {@code [..., T, D]},
     * cos/sin {@code [T, D]} (or any shape that broadcasts to x's shape).
     */
    public static Tensor rotary(Tensor x, INDArray cos, INDArray sin) {
        INDArray xv = x.value();
        requireRank("Ops.rotary", xv, 2);
        DataType dt = xv.dataType();
        long d = xv.size(xv.rank() - 1);
        if (d % 2 != 0) {
            throw new IllegalArgumentException("Ops.rotary: last dimension must be even, x is " + shp(xv));
        }
        for (INDArray cs : new INDArray[]{cos, sin}) {
            long[] bs = broadcastShape("Ops.rotary", xv.shape(), cs.shape());
            if (!Arrays.equals(bs, xv.shape()) || cs.size(cs.rank() - 1) != d) {
                throw new IllegalArgumentException("Ops.rotary: cos/sin " + shp(cs) + " do not match x " + shp(xv)
                        + " (need [T, D])");
            }
        }
        INDArray c = sameType(cos, dt);
        INDArray s = sameType(sin, dt);
        INDArray out = bin(Bin.MUL, xv, c, xv.shape());
        out.addi(bin(Bin.MUL, rotateHalf(xv, false), s, xv.shape()));
        return Tensor.fromOp(out, g -> {
            if (x.requiresGrad()) {
                // out = C⊙x + S⊙R x  ⇒  dx = C⊙g + Rᵀ(S⊙g)
                INDArray gs = bin(Bin.MUL, g, s, xv.shape());
                INDArray dx = bin(Bin.MUL, g, c, xv.shape());
                dx.addi(rotateHalf(gs, true));
                own(x, dx);
            }
        }, x);
    }

    /** rotate_half: {@code [-v2, v1]}; its transpose ({@code transpose = true}): {@code [v2, -v1]}. */
    private static INDArray rotateHalf(INDArray v, boolean transpose) {
        int ax = v.rank() - 1;
        long d = v.size(ax);
        long h = d / 2;
        INDArray out = Nd4j.createUninitialized(v.dataType(), v.shape());
        INDArray lo = sliceView(out, ax, 0, h);
        INDArray hi = sliceView(out, ax, h, d);
        lo.assign(sliceView(v, ax, h, d));
        hi.assign(sliceView(v, ax, 0, h));
        if (transpose) {
            hi.negi();
        } else {
            lo.negi();
        }
        return out;
    }

    // ---- losses --------------------------------------------------------------------------------

    /**
     * Cross-entropy of logits {@code [..., C]} against integer class targets of shape
     * {@code [...]}; targets equal to -100 are ignored (MEAN divides by the count of the rest).
     * NONE returns the per-position loss (0 at ignored positions). When every target is ignored,
     * MEAN returns 0 with a zero gradient.
     */
    public static Tensor crossEntropy(Tensor logits, INDArray targets, Reduction reduction) {
        INDArray lv = logits.value();
        requireRank("Ops.crossEntropy", lv, 1);
        DataType dt = lv.dataType();
        int r = lv.rank();
        long classes = lv.size(r - 1);
        long[] lead = Arrays.copyOf(lv.shape(), r - 1);
        if (!Arrays.equals(lead, targets.shape()) && !(lead.length == 0 && targets.length() == 1)) {
            throw new IllegalArgumentException("Ops.crossEntropy: targets " + shp(targets) + " do not match logits "
                    + shp(lv) + " (need targets of shape " + Arrays.toString(lead) + ")");
        }
        int rows = (int) (lv.length() / classes);
        double[] tv = targets.dup('c').reshape(targets.length()).toDoubleVector();
        int[] t = new int[rows];
        int count = 0;
        for (int i = 0; i < rows; i++) {
            double v = tv[i];
            if (v != Math.rint(v)) {
                throw new IllegalArgumentException("Ops.crossEntropy: target " + v + " at position " + i + " is not an integer");
            }
            if (v == IGNORE_INDEX) {
                t[i] = -1;
                continue;
            }
            if (v < 0 || v >= classes) {
                throw new IllegalArgumentException("Ops.crossEntropy: target " + (long) v + " at position " + i
                        + " is outside [0, " + classes + ") for logits " + shp(lv));
            }
            t[i] = (int) v;
            count++;
        }
        INDArray lsm = logSoftmax2d(lv.reshape('c', rows, classes));      // [N, C]
        double[] per = new double[rows];
        double total = 0;
        for (int i = 0; i < rows; i++) {
            if (t[i] >= 0) {
                per[i] = -lsm.getDouble(i, t[i]);
                total += per[i];
            }
        }
        final int valid = count;
        INDArray out = switch (reduction) {
            case MEAN -> Nd4j.scalar(dt, valid == 0 ? 0.0 : total / valid);
            case SUM -> Nd4j.scalar(dt, total);
            case NONE -> Nd4j.createFromArray(per).castTo(dt).reshape('c', lead);
        };
        return Tensor.fromOp(out, g -> {
            if (!logits.requiresGrad()) {
                return;
            }
            // d/dlogits = w_i·(softmax − onehot(t_i)), w_i = 0 at ignored rows
            double[] w = new double[rows];
            double[] gv = reduction == Reduction.NONE ? g.dup('c').reshape(rows).toDoubleVector() : null;
            double g0 = reduction == Reduction.NONE ? 0 : g.getDouble(0);
            for (int i = 0; i < rows; i++) {
                if (t[i] < 0) continue;
                w[i] = switch (reduction) {
                    case MEAN -> g0 / valid;
                    case SUM -> g0;
                    case NONE -> gv[i];
                };
            }
            INDArray wcol = Nd4j.createFromArray(w).castTo(dt).reshape(rows, 1);
            INDArray d = Transforms.exp(lsm, true).muliColumnVector(wcol);
            for (int i = 0; i < rows; i++) {
                if (t[i] >= 0) {
                    d.putScalar(i, t[i], d.getDouble(i, t[i]) - w[i]);
                }
            }
            own(logits, d.reshape('c', lv.shape()));
        }, logits);
    }

    /** Mean squared error (or its sum, or the element-wise squares) of two same-shaped tensors. */
    public static Tensor mse(Tensor a, Tensor b, Reduction reduction) {
        INDArray av = a.value();
        INDArray bv = sameType(b.value(), av.dataType());
        if (!Arrays.equals(av.shape(), bv.shape())) {
            throw new IllegalArgumentException("Ops.mse: shapes differ, a " + shp(av) + " b " + shp(bv));
        }
        INDArray diff = av.sub(bv);
        INDArray sq = diff.mul(diff);
        long n = av.length();
        INDArray out = switch (reduction) {
            case MEAN -> Nd4j.scalar(av.dataType(), sq.sumNumber().doubleValue() / n);
            case SUM -> Nd4j.scalar(av.dataType(), sq.sumNumber().doubleValue());
            case NONE -> sq;
        };
        return Tensor.fromOp(out, g -> {
            INDArray d = switch (reduction) {
                case MEAN -> diff.mul(2.0 * g.getDouble(0) / n);
                case SUM -> diff.mul(2.0 * g.getDouble(0));
                case NONE -> diff.mul(2.0).muli(g);
            };
            if (b.requiresGrad()) own(b, d.neg());
            if (a.requiresGrad()) own(a, d);
        }, a, b);
    }

    /**
     * Hinton distillation loss {@code T²·KL(softmax(teacher/T) ‖ softmax(student/T))} over the last
     * axis, averaged over the leading positions (batchmean). Gradients flow to both inputs when they require them.
     */
    public static Tensor klDivergence(Tensor studentLogits, Tensor teacherLogits, double temperature) {
        INDArray sv = studentLogits.value();
        INDArray tv = sameType(teacherLogits.value(), sv.dataType());
        requireRank("Ops.klDivergence", sv, 1);
        if (!Arrays.equals(sv.shape(), tv.shape())) {
            throw new IllegalArgumentException("Ops.klDivergence: student " + shp(sv) + " and teacher " + shp(tv) + " differ");
        }
        if (!(temperature > 0)) {
            throw new IllegalArgumentException("Ops.klDivergence: temperature must be > 0, got " + temperature);
        }
        long classes = sv.size(sv.rank() - 1);
        long rows = sv.length() / classes;
        double invT = 1.0 / temperature;
        INDArray lps = logSoftmax2d(sv.reshape('c', rows, classes).mul(invT));   // log p_s
        INDArray lpt = logSoftmax2d(tv.reshape('c', rows, classes).mul(invT));   // log p_t
        INDArray pt = Transforms.exp(lpt, true);
        INDArray diff = lpt.sub(lps);                                            // log p_t − log p_s
        INDArray rowKl = pt.mul(diff).sum(true, 1);                              // [N, 1]
        double scale = temperature * temperature / rows;
        INDArray out = Nd4j.scalar(sv.dataType(), rowKl.sumNumber().doubleValue() * scale);
        return Tensor.fromOp(out, g -> {
            double k = g.getDouble(0) * temperature / rows;                        // T²/N · 1/T
            if (studentLogits.requiresGrad()) {
                INDArray ds = Transforms.exp(lps, true).subi(pt).muli(k);        // (p_s − p_t)
                own(studentLogits, ds.reshape('c', sv.shape()));
            }
            if (teacherLogits.requiresGrad()) {
                INDArray dt = diff.subColumnVector(rowKl).muli(pt).muli(k);      // p_t(d − Σ p_t d)
                own(teacherLogits, dt.reshape('c', sv.shape()));
            }
        }, studentLogits, teacherLogits);
    }

    /**
     * Cosine similarity along {@code axis} (that axis is reduced away); {@code eps} guards zero norms.
     * Follows the current {@code torch.nn.functional.cosine_similarity}:
     * {@code a·b / (max(‖a‖, eps) · max(‖b‖, eps))} — each norm is clamped separately (the older
     * {@code max(‖a‖·‖b‖, eps)} form differs only when a norm is below eps). a and b broadcast.
     */
    public static Tensor cosineSimilarity(Tensor a, Tensor b, int axis, double eps) {
        INDArray av = a.value();
        INDArray bv = sameType(b.value(), av.dataType());
        long[] shape = broadcastShape("Ops.cosineSimilarity", av.shape(), bv.shape());
        if (shape.length == 0) {
            throw new IllegalArgumentException("Ops.cosineSimilarity: inputs are scalars, a " + shp(av) + " b " + shp(bv));
        }
        int r = shape.length;
        int d = axis < 0 ? axis + r : axis;
        if (d < 0 || d >= r) {
            throw new IllegalArgumentException("Ops.cosineSimilarity: axis " + axis + " out of range for shape " + Arrays.toString(shape));
        }
        INDArray ae = expandTo(av, shape);
        INDArray be = expandTo(bv, shape);
        INDArray dot = ae.mul(be).sum(true, d);                            // keepDims shape
        INDArray na = Transforms.sqrt(ae.mul(ae).sum(true, d), false);
        INDArray nb = Transforms.sqrt(be.mul(be).sum(true, d), false);
        INDArray naC = Transforms.max(na, eps, true);
        INDArray nbC = Transforms.max(nb, eps, true);
        INDArray denom = naC.mul(nbC);
        INDArray cosK = dot.div(denom);                                    // [.., 1, ..]
        long[] outShape = new long[r - 1];
        for (int i = 0, k = 0; i < r; i++) {
            if (i != d) outShape[k++] = shape[i];
        }
        INDArray out = cosK.reshape('c', outShape);
        return Tensor.fromOp(out, g -> {
            INDArray gk = g.reshape('c', cosK.shape());
            if (a.requiresGrad()) {
                // d cos/da = b/(na·nb) − cos·a/(na²·... ) where the second term exists only when ‖a‖ > eps
                own(a, reduceTo(cosGrad(ae, be, cosK, denom, na, naC, eps, gk, shape), av.shape()));
            }
            if (b.requiresGrad()) {
                own(b, reduceTo(cosGrad(be, ae, cosK, denom, nb, nbC, eps, gk, shape), bv.shape()));
            }
        }, a, b);
    }

    /** g·(other/denom − cos·self/‖self‖²·[‖self‖ > eps]) broadcast over the reduced axis. */
    private static INDArray cosGrad(INDArray self, INDArray other, INDArray cosK, INDArray denom, INDArray n,
                                    INDArray nC, double eps, INDArray gk, long[] shape) {
        INDArray first = bin(Bin.DIV, other, denom, shape);
        INDArray active = n.gt(eps).castTo(self.dataType());               // clamp inactive → no norm term
        INDArray coef = cosK.div(nC.mul(nC)).muli(active);
        INDArray second = bin(Bin.MUL, self, coef, shape);
        first.subi(second);
        binInto(Bin.MUL, first, gk, first);
        return first;
    }

    // ---- helpers ---------------------------------------------------------------------------------

    private static String shp(INDArray a) {
        return Arrays.toString(a.shape());
    }

    private static int[] allAxes(int r) {
        int[] ax = new int[r];
        for (int i = 0; i < r; i++) ax[i] = i;
        return ax;
    }

    private static int normAxis(String op, INDArray a, int axis) {
        int r = a.rank();
        int d = axis < 0 ? axis + r : axis;
        if (d < 0 || d >= r) {
            throw new IllegalArgumentException(op + ": axis " + axis + " out of range for shape " + shp(a));
        }
        return d;
    }

    private static int[] normAxes(String op, INDArray a, int[] axes) {
        int[] out = new int[axes.length];
        boolean[] seen = new boolean[a.rank()];
        for (int i = 0; i < axes.length; i++) {
            int d = normAxis(op, a, axes[i]);
            if (seen[d]) {
                throw new IllegalArgumentException(op + ": axis " + axes[i] + " repeated in " + Arrays.toString(axes) + " for shape " + shp(a));
            }
            seen[d] = true;
            out[i] = d;
        }
        Arrays.sort(out);
        return out;
    }

    private static void requireRank(String op, INDArray a, int min) {
        if (a.rank() < min || a.length() == 0) {
            throw new IllegalArgumentException(op + ": needs a non-empty input of rank >= " + min + ", got " + shp(a));
        }
    }

    private static INDArray checkVector(String op, String name, INDArray v, long dim, INDArray x) {
        if (v.rank() != 1 || v.length() != dim) {
            throw new IllegalArgumentException(op + ": " + name + " " + shp(v) + " does not match the last axis of " + shp(x));
        }
        return v;
    }

    private static long[] resolveShape(INDArray a, long[] shape) {
        long[] out = shape.clone();
        int unknown = -1;
        long known = 1;
        for (int i = 0; i < out.length; i++) {
            if (out[i] == -1 && unknown < 0) {
                unknown = i;
            } else if (out[i] < 0) {
                throw new IllegalArgumentException("Ops.reshape: bad target shape " + Arrays.toString(shape) + " for " + shp(a));
            } else {
                known *= out[i];
            }
        }
        if (unknown >= 0) {
            if (known == 0 || a.length() % known != 0) {
                throw new IllegalArgumentException("Ops.reshape: cannot reshape " + shp(a) + " to " + Arrays.toString(shape));
            }
            out[unknown] = a.length() / known;
        } else if (known != a.length()) {
            throw new IllegalArgumentException("Ops.reshape: cannot reshape " + shp(a) + " (" + a.length()
                    + " elements) to " + Arrays.toString(shape));
        }
        return out;
    }

    /** numpy broadcast of two shapes, or IllegalArgumentException naming {@code op} and both shapes. */
    static long[] broadcastShape(String op, long[] a, long[] b) {
        int r = Math.max(a.length, b.length);
        long[] out = new long[r];
        for (int i = 0; i < r; i++) {
            long da = i < r - a.length ? 1 : a[i - (r - a.length)];
            long db = i < r - b.length ? 1 : b[i - (r - b.length)];
            if (da != db && da != 1 && db != 1) {
                throw new IllegalArgumentException(op + ": shapes " + Arrays.toString(a) + " and " + Arrays.toString(b)
                        + " are not broadcastable");
            }
            out[i] = da == 1 ? db : da;
        }
        return out;
    }

    /** Element-wise x (op) y with numpy broadcasting into a new array of shape {@code outShape}. */
    private static INDArray bin(Bin kind, INDArray x, INDArray y, long[] outShape) {
        INDArray out = Nd4j.createUninitialized(x.dataType(), outShape);
        return binInto(kind, x, y, out);
    }

    private static INDArray binInto(Bin kind, INDArray x, INDArray y, INDArray out) {
        INDArray[] in = {x, y};
        INDArray[] o = {out};
        switch (kind) {
            case ADD -> Nd4j.exec(new AddOp(in, o));
            case SUB -> Nd4j.exec(new SubOp(in, o));
            case MUL -> Nd4j.exec(new MulOp(in, o));
            case DIV -> Nd4j.exec(new DivOp(in, o));
            default -> throw new IllegalStateException(kind.name());
        }
        return out;
    }

    /** Sums {@code g} over the broadcast dimensions so it has exactly {@code shape}. */
    static INDArray reduceTo(INDArray g, long[] shape) {
        if (Arrays.equals(g.shape(), shape)) {
            return g;
        }
        int lead = g.rank() - shape.length;
        int[] axes = new int[g.rank()];
        int k = 0;
        for (int i = 0; i < g.rank(); i++) {
            if (i < lead || (shape[i - lead] == 1 && g.size(i) != 1)) {
                axes[k++] = i;
            }
        }
        INDArray s = k == 0 ? g : g.sum(true, Arrays.copyOf(axes, k));
        return s.reshape('c', shape);
    }

    /** Broadcasts {@code g} to {@code shape} (a new array unless the shape already matches). */
    static INDArray expandTo(INDArray g, long[] shape) {
        if (Arrays.equals(g.shape(), shape)) {
            return g;
        }
        INDArray src = g;
        if (g.rank() < shape.length) {
            long[] padded = new long[shape.length];
            Arrays.fill(padded, 1L);
            System.arraycopy(g.shape(), 0, padded, shape.length - g.rank(), g.rank());
            src = g.reshape('c', padded);
        }
        INDArray out = Nd4j.zeros(g.dataType(), shape);
        return binInto(Bin.ADD, out, src, out);
    }

    private static INDArray sliceView(INDArray a, int axis, long start, long end) {
        INDArrayIndex[] idx = new INDArrayIndex[a.rank()];
        for (int i = 0; i < idx.length; i++) {
            idx[i] = i == axis ? NDArrayIndex.interval(start, end) : NDArrayIndex.all();
        }
        return a.get(idx);
    }

    private static INDArray sameType(INDArray v, DataType dt) {
        return v.dataType() == dt ? v : v.castTo(dt);
    }

    /**
     * Adds a freshly allocated gradient (referenced nowhere else) to {@code t}, letting a leaf adopt
     * it without a copy; casts to t's dtype for mixed-dtype inputs.
     */
    private static void own(Tensor t, INDArray fresh) {
        t.accumulateOwnedGrad(castLike(fresh, t.value()));
    }

    /** Casts a gradient to the dtype of the value it belongs to (mixed-dtype inputs). */
    private static INDArray castLike(INDArray g, INDArray like) {
        return g.dataType() == like.dataType() ? g : g.castTo(like.dataType());
    }

    /** Flattens integral-valued ids/indices (any numeric dtype) and checks them against [0, bound). */
    private static int[] toIndices(String op, INDArray ids, long bound) {
        long n = ids.length();
        double[] v = n == 0 ? new double[0] : ids.dup('c').reshape(n).toDoubleVector();
        int[] out = new int[v.length];
        for (int i = 0; i < v.length; i++) {
            double x = v[i];
            if (x != Math.rint(x) || x < 0 || x >= bound) {
                throw new IllegalArgumentException(op + ": index " + x + " at position " + i + " is not an integer in [0, "
                        + bound + ") (indices shape " + shp(ids) + ")");
            }
            out[i] = (int) x;
        }
        return out;
    }

    /**
     * dst[idx[k], :] += src[k, :] for every k (repeated indices add up), in place, with libnd4j's
     * scatter_add. Its {@code lock} flag is set: without it the op splits the indices across
     * threads and repeated indices race. Indices were range-checked by {@link #toIndices}.
     */
    private static void scatterAddRows(INDArray dst, int[] idx, INDArray src) {
        if (idx.length == 0) {
            return;
        }
        DynamicCustomOp op = DynamicCustomOp.builder("scatter_add")
                .addInputs(dst, Nd4j.createFromArray(idx), src)
                .addOutputs(dst)
                .addBooleanArguments(true, false)          // lock, checkIndices
                .build();
        Nd4j.exec(op);
    }
}
