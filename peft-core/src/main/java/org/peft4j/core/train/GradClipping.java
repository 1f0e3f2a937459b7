package org.peft4j.core.train;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.nn.Parameter;

import java.util.Collection;

/** Gradient clipping by global L2 norm, as {@code torch.nn.utils.clip_grad_norm_}. */
public final class GradClipping {
    private GradClipping() {
    }

    /**
     * The L2 norm of all gradients taken together, {@code √Σ‖g‖²}, accumulated in double.
     * Parameters without a gradient are skipped. NaN or infinity propagate into the result.
     */
    public static double globalNorm(Collection<Parameter> params) {
        double sumSq = 0.0;
        for (Parameter p : params) {
            INDArray g = p.grad();
            if (g == null) {
                continue;
            }
            double n = g.norm2Number().doubleValue();
            sumSq += n * n;
        }
        return Math.sqrt(sumSq);
    }

    /**
     * Scales every gradient in place by {@code maxNorm / (norm + 1e-6)} when that factor is
     * below 1 (PyTorch's rule) and returns the global norm measured before clipping. A
     * non-finite norm is returned without touching the gradients, so the caller can stop.
     */
    public static double clipGradNorm(Collection<Parameter> params, double maxNorm) {
        if (!(maxNorm > 0) || Double.isInfinite(maxNorm)) {
            throw new IllegalArgumentException("maxGradNorm must be positive and finite: " + maxNorm);
        }
        double norm = globalNorm(params);
        if (!Double.isFinite(norm)) {
            return norm;
        }
        double coef = maxNorm / (norm + 1e-6);
        if (coef < 1.0) {
            for (Parameter p : params) {
                INDArray g = p.grad();
                if (g != null) {
                    g.muli(coef);
                }
            }
        }
        return norm;
    }
}
