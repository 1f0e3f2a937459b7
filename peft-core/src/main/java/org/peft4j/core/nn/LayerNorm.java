package org.peft4j.core.nn;

import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.FusedOps;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;

/**
 * Layer normalisation over the last axis: {@code (x − mean) / √(var + eps) · weight + bias}
 * with the biased variance, as PyTorch. Parameters {@code weight} (ones) and optional {@code bias} (zeros), {@code [dim]}.
 */
public class LayerNorm extends Module implements UnaryModule {
    private final int dim;
    private final double eps;

    /** With weight and bias (BERT: eps 1e-12; GPT-2: 1e-5). */
    public LayerNorm(int dim, double eps) {
        this(dim, eps, true);
    }

    public LayerNorm(int dim, double eps, boolean bias) {
        if (dim <= 0 || !(eps >= 0)) {
            throw new IllegalArgumentException("LayerNorm needs dim > 0 and eps >= 0, got dim=" + dim + ", eps=" + eps);
        }
        this.dim = dim;
        this.eps = eps;
        registerParameter("weight", new Parameter(Nd4j.ones(dim)));
        if (bias) {
            registerParameter("bias", new Parameter(Nd4j.zeros(dim)));
        }
    }

    public int dim() {
        return dim;
    }

    public double eps() {
        return eps;
    }

    public Parameter weight() {
        return parameter("weight");
    }

    /** Null when built without a bias. */
    public Parameter bias() {
        return parameter("bias");
    }

    @Override
    public LayerNorm deepCopy() {
        LayerNorm c = new LayerNorm(dim, eps, bias() != null);
        c.weight().setValue(weight().value().dup('c'));
        if (bias() != null) {
            c.bias().setValue(bias().value().dup('c'));
        }
        return withTrainingModeOf(c);
    }

    /**
     * Final, like {@link #forwardResidual}: the two must compute the same function, so a variant
     * with other math is a different module (or a wrapper), not a subclass.
     */
    @Override
    public final Tensor forward(Tensor x) {
        check(x, "input");
        return Ops.layerNorm(x, weight(), bias(), eps);
    }

    /**
     * {@code forward(x + residual)} for a post-LayerNorm residual block (BERT's
     * {@code LayerNorm(dense(h) + input)}), {@code x} and {@code residual} of one shape
     * {@code [..., dim]}. The FLOAT path is one fused kernel that never materialises the sum
     * (it is recomputed row by row in backward); other types and layouts fall back to the
     * composition. Both inputs receive the gradient of the sum.
     */
    public final Tensor forwardResidual(Tensor x, Tensor residual) {
        check(x, "input");
        if (residual == null || !Arrays.equals(x.shape(), residual.shape())) {
            throw new IllegalArgumentException("LayerNorm(" + dim + ") residual " + (residual == null ? "null"
                    : Arrays.toString(residual.shape())) + " must match the input " + Arrays.toString(x.shape()));
        }
        return FusedOps.addLayerNorm(x, residual, weight(), bias(), eps);
    }

    private void check(Tensor x, String what) {
        if (x == null || x.rank() < 1 || x.size(-1) != dim) {
            throw new IllegalArgumentException("LayerNorm(" + dim + ") got " + what + " "
                    + (x == null ? "null" : Arrays.toString(x.shape())));
        }
    }

    @Override
    protected String describe() {
        return "LayerNorm(" + dim + ", eps=" + eps + ")";
    }
}
