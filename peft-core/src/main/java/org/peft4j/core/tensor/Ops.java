package org.peft4j.core.tensor;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Every differentiable operation, as static functions in one place. Each returns a new
 * {@link Tensor} built with {@link Tensor#fromOp} whose closure accumulates gradients into the
 * inputs that require them (and computes nothing for inputs that do not: a frozen weight
 * gets no weight-gradient matmul). Inputs may be non-contiguous views (permuted, sliced).
 *
 * <p>Broadcasting follows numpy rules; the backward pass sums gradients back to each input's
 * shape. Axis arguments may be negative (counted from the end).
 */
public final class Ops {
    private Ops() {
    }

    /** How a loss reduces over its elements. */
    public enum Reduction { MEAN, SUM, NONE }

    private static UnsupportedOperationException pending() {
        return new UnsupportedOperationException("not implemented yet");
    }

    // ---- matrix products -------------------------------------------------------------

    /** {@code a·b}: 2-D {@code [m,k]·[k,n]}, or batched over equal leading dims (rank 3 or 4). */
    public static Tensor matmul(Tensor a, Tensor b) { throw pending(); }

    /** {@code op(a)·op(b)} where op transposes the last two axes when its flag is set. */
    public static Tensor matmul(Tensor a, Tensor b, boolean transA, boolean transB) { throw pending(); }

    /** {@code x·Wᵀ + b}: x {@code [..., in]}, weight {@code [out, in]}, bias {@code [out]} or null → {@code [..., out]}. */
    public static Tensor linear(Tensor x, Tensor weight, Tensor bias) { throw pending(); }

    // ---- element-wise with broadcasting ------------------------------------------------

    public static Tensor add(Tensor a, Tensor b) { throw pending(); }
    public static Tensor sub(Tensor a, Tensor b) { throw pending(); }
    public static Tensor mul(Tensor a, Tensor b) { throw pending(); }
    public static Tensor div(Tensor a, Tensor b) { throw pending(); }

    // ---- scalar and unary ---------------------------------------------------------------

    public static Tensor add(Tensor a, double s) { throw pending(); }
    public static Tensor mul(Tensor a, double s) { throw pending(); }
    public static Tensor pow(Tensor a, double exponent) { throw pending(); }
    public static Tensor neg(Tensor a) { throw pending(); }
    public static Tensor exp(Tensor a) { throw pending(); }
    public static Tensor log(Tensor a) { throw pending(); }
    public static Tensor sqrt(Tensor a) { throw pending(); }

    // ---- reductions ----------------------------------------------------------------------

    /** Sum of all elements (a scalar). */
    public static Tensor sum(Tensor a) { throw pending(); }
    public static Tensor sum(Tensor a, boolean keepDims, int... axes) { throw pending(); }
    /** Mean of all elements (a scalar). */
    public static Tensor mean(Tensor a) { throw pending(); }
    public static Tensor mean(Tensor a, boolean keepDims, int... axes) { throw pending(); }

    // ---- shape ---------------------------------------------------------------------------

    public static Tensor reshape(Tensor a, long... shape) { throw pending(); }
    public static Tensor permute(Tensor a, int... axes) { throw pending(); }
    public static Tensor transpose(Tensor a, int axis1, int axis2) { throw pending(); }
    /** Elements {@code [start, end)} along {@code axis}. */
    public static Tensor slice(Tensor a, int axis, long start, long end) { throw pending(); }
    public static Tensor concat(int axis, Tensor... parts) { throw pending(); }
    /** Picks entries along {@code axis} by integer index (repeats allowed; gradients add up). */
    public static Tensor indexSelect(Tensor a, int axis, INDArray indices) { throw pending(); }
    /** Rows of {@code weight [vocab, dim]} for integer ids of any shape → {@code ids.shape + [dim]}. */
    public static Tensor embedding(Tensor weight, INDArray ids) { throw pending(); }
    /** {@code value} where {@code mask} (broadcastable, non-zero = fill) is set, else {@code a}. */
    public static Tensor maskedFill(Tensor a, INDArray mask, double value) { throw pending(); }

    // ---- normalisation and softmax ---------------------------------------------------------

    /** Softmax over the last axis. */
    public static Tensor softmax(Tensor a) { throw pending(); }
    /** Log-softmax over the last axis. */
    public static Tensor logSoftmax(Tensor a) { throw pending(); }
    /** Layer norm over the last axis; gamma/beta {@code [dim]} (either may be null). */
    public static Tensor layerNorm(Tensor x, Tensor gamma, Tensor beta, double eps) { throw pending(); }
    /** RMS norm over the last axis: {@code x / sqrt(mean(x²) + eps) * gamma}. */
    public static Tensor rmsNorm(Tensor x, Tensor gamma, double eps) { throw pending(); }

    // ---- activations -------------------------------------------------------------------------

    /** Exact GELU, {@code 0.5·x·(1 + erf(x/√2))} (BERT's "gelu"). */
    public static Tensor gelu(Tensor a) { throw pending(); }
    /** Tanh GELU, {@code 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))} (GPT-2's "gelu_new"). */
    public static Tensor geluTanh(Tensor a) { throw pending(); }
    public static Tensor silu(Tensor a) { throw pending(); }
    public static Tensor relu(Tensor a) { throw pending(); }
    public static Tensor tanh(Tensor a) { throw pending(); }
    public static Tensor sigmoid(Tensor a) { throw pending(); }
    /** Inverted dropout: zero with probability p, scale survivors by 1/(1-p); identity when not training or p = 0. */
    public static Tensor dropout(Tensor a, double p, boolean training, Rng rng) { throw pending(); }

    /**
     * Rotary position embedding in the Hugging Face layout ({@code x·cos + rotate_half(x)·sin},
     * rotate_half(x) = concat(-x2, x1) of the two halves of the last axis). x {@code [..., T, D]},
     * cos/sin {@code [T, D]}.
     */
    public static Tensor rotary(Tensor x, INDArray cos, INDArray sin) { throw pending(); }

    // ---- losses --------------------------------------------------------------------------------

    /**
     * Cross-entropy of logits {@code [..., C]} against integer class targets of shape
     * {@code [...]}; targets equal to -100 are ignored (MEAN divides by the count of the rest).
     * NONE returns the per-position loss (0 at ignored positions).
     */
    public static Tensor crossEntropy(Tensor logits, INDArray targets, Reduction reduction) { throw pending(); }

    public static Tensor mse(Tensor a, Tensor b, Reduction reduction) { throw pending(); }

    /**
     * Hinton distillation loss {@code T²·KL(softmax(teacher/T) ‖ softmax(student/T))} over the last
     * axis, averaged over the leading positions (batchmean). Gradients flow to both inputs when they require them.
     */
    public static Tensor klDivergence(Tensor studentLogits, Tensor teacherLogits, double temperature) { throw pending(); }

    /** Cosine similarity along {@code axis} (that axis is reduced away); {@code eps} guards zero norms. */
    public static Tensor cosineSimilarity(Tensor a, Tensor b, int axis, double eps) { throw pending(); }
}
