package org.peft4j.core.nn;

import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;

/** RMS normalisation over the last axis (LLaMA): {@code x / √(mean(x²) + eps) · weight}, weight {@code [dim]} (ones). */
public class RMSNorm extends Module implements UnaryModule {
    private final int dim;
    private final double eps;

    public RMSNorm(int dim, double eps) {
        if (dim <= 0 || !(eps >= 0)) {
            throw new IllegalArgumentException("RMSNorm needs dim > 0 and eps >= 0, got dim=" + dim + ", eps=" + eps);
        }
        this.dim = dim;
        this.eps = eps;
        registerParameter("weight", new Parameter(Nd4j.ones(dim)));
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

    @Override
    public RMSNorm deepCopy() {
        RMSNorm c = new RMSNorm(dim, eps);
        c.weight().setValue(weight().value().dup('c'));
        return withTrainingModeOf(c);
    }

    @Override
    public Tensor forward(Tensor x) {
        if (x.rank() < 1 || x.size(-1) != dim) {
            throw new IllegalArgumentException("RMSNorm(" + dim + ") got input " + Arrays.toString(x.shape()));
        }
        return Ops.rmsNorm(x, weight(), eps);
    }

    @Override
    protected String describe() {
        return "RMSNorm(" + dim + ", eps=" + eps + ")";
    }
}
