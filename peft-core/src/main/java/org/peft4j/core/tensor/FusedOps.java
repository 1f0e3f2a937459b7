package org.peft4j.core.tensor;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;

/**
 * Differentiable operations that fuse what {@link Ops} expresses as several ops, for the model
 * families' hot paths. Each gives the same values and gradients as its composition (which it
 * falls back to for non-FLOAT or non-contiguous inputs, e.g. the DOUBLE gradient checks).
 *
 * <p>Public for the model packages; not a stable API.
 */
public final class FusedOps {
    private FusedOps() {
    }

    /**
     * {@code layerNorm(a + b)} over the last axis (a post-LayerNorm residual block) without
     * materialising the sum: the FLOAT kernel adds a and b row by row in forward and again in
     * backward, so the block keeps no extra {@code [rows, dim]} array alive. Both inputs get the
     * same gradient. {@code b}, gamma and beta may be null.
     */
    public static Tensor addLayerNorm(Tensor a, Tensor b, Tensor gamma, Tensor beta, double eps) {
        INDArray av = a.value();
        INDArray bv = b == null ? null : b.value();
        long dim = av.size(av.rank() - 1);
        boolean fast = Kernels.usable(av) && (bv == null || (Kernels.usable(bv) && Arrays.equals(av.shape(), bv.shape())))
                && floatVector(gamma, dim) && floatVector(beta, dim) && av.rank() >= 1;
        if (!fast) {
            Tensor s = b == null ? a : Ops.add(a, b);
            return Ops.layerNorm(s, gamma, beta, eps);
        }
        return layerNormKernel(a, b, gamma, beta, eps);
    }

    private static boolean floatVector(Tensor t, long dim) {
        return t == null || (t.value().dataType() == DataType.FLOAT && t.rank() == 1 && t.length() == dim);
    }

    /** The FLOAT kernel path of {@link Ops#layerNorm} and {@link #addLayerNorm}; inputs already checked. */
    static Tensor layerNormKernel(Tensor a, Tensor b, Tensor gamma, Tensor beta, double eps) {
        final INDArray av = a.value();
        final INDArray bv = b == null ? null : b.value();
        final int dim = (int) av.size(av.rank() - 1);
        final int rows = (int) (av.length() / dim);
        final float[] gv = gamma == null ? null : gamma.value().toFloatVector();
        final float[] bev = beta == null ? null : beta.value().toFloatVector();
        final float[] mean = new float[rows];
        final float[] rstd = new float[rows];
        final INDArray y = Nd4j.createUninitialized(DataType.FLOAT, av.shape());
        Kernels.layerNormForward(av, bv, gv, bev, eps, dim, y, mean, rstd);
        return Tensor.fromOp(y, g -> {
            boolean needA = a.requiresGrad();
            boolean needB = b != null && b.requiresGrad();
            boolean needG = gamma != null && gamma.requiresGrad();
            boolean needBeta = beta != null && beta.requiresGrad();
            INDArray gc = Kernels.usable(g) ? g : g.dup('c');
            INDArray dx = needA || needB ? Nd4j.createUninitialized(DataType.FLOAT, av.shape()) : null;
            double[] dGamma = needG ? new double[dim] : null;
            double[] dBeta = needBeta ? new double[dim] : null;
            Kernels.layerNormBackward(av, bv, gv, dim, mean, rstd, gc, dx, dGamma, dBeta);
            if (needA && needB) {
                // one buffer, two consumers: both borrow it (as Ops.add's backward does)
                a.accumulateGrad(dx);
                b.accumulateGrad(dx);
            } else if (needA) {
                a.accumulateOwnedGrad(dx);
            } else if (needB) {
                b.accumulateOwnedGrad(dx);
            }
            if (needG) {
                gamma.accumulateOwnedGrad(toFloat(dGamma));
            }
            if (needBeta) {
                beta.accumulateOwnedGrad(toFloat(dBeta));
            }
        }, a, b, gamma, beta);
    }

    private static INDArray toFloat(double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = (float) v[i];
        }
        return Nd4j.createFromArray(f);
    }
}
