package org.peft4j.prompt;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;


/**
 * A multi-layer bidirectional LSTM on our tensor ops, batch first, with PyTorch's parameter names
 * and math ({@code torch.nn.LSTM(bidirectional=True, batch_first=True)}): per layer and direction
 * {@code weight_ih_l{k}[_reverse]} {@code [4H, in]}, {@code weight_hh_l{k}[_reverse]} {@code [4H, H]},
 * {@code bias_ih_l{k}[_reverse]}, {@code bias_hh_l{k}[_reverse]} {@code [4H]}, gates in the order
 * input, forget, cell, output:
 * {@code i,f,o = σ(·)}, {@code g = tanh(·)}, {@code c' = f·c + i·g}, {@code h' = o·tanh(c')}.
 * The reverse direction reads the sequence backwards; each position's output is
 * {@code [h_forward, h_reverse]} ({@code [batch, seq, 2H]}), the input of the next layer, with
 * dropout between layers (not after the last), as PyTorch.
 */
public final class Lstm extends Module {
    private final int inputSize;
    private final int hiddenSize;
    private final int numLayers;
    private final double dropout;
    private final Rng rng;

    /** PyTorch's init: every tensor uniform in {@code ±1/√H}. */
    public Lstm(int inputSize, int hiddenSize, int numLayers, double dropout, Rng rng) {
        if (inputSize <= 0 || hiddenSize <= 0 || numLayers <= 0) {
            throw new IllegalArgumentException("LSTM needs positive sizes, got input " + inputSize + ", hidden " + hiddenSize
                    + ", layers " + numLayers);
        }
        this.inputSize = inputSize;
        this.hiddenSize = hiddenSize;
        this.numLayers = numLayers;
        this.dropout = dropout;
        this.rng = rng;
        double k = 1.0 / Math.sqrt(hiddenSize);
        for (int l = 0; l < numLayers; l++) {
            int in = l == 0 ? inputSize : 2 * hiddenSize;
            for (String suffix : new String[]{"", "_reverse"}) {
                registerParameter("weight_ih_l" + l + suffix, new Parameter(uniform(rng, k, 4L * hiddenSize, in)));
                registerParameter("weight_hh_l" + l + suffix, new Parameter(uniform(rng, k, 4L * hiddenSize, hiddenSize)));
                registerParameter("bias_ih_l" + l + suffix, new Parameter(uniform(rng, k, 4L * hiddenSize)));
                registerParameter("bias_hh_l" + l + suffix, new Parameter(uniform(rng, k, 4L * hiddenSize)));
            }
        }
    }

    private static INDArray uniform(Rng rng, double k, long... shape) {
        INDArray a = Nd4j.create(org.nd4j.linalg.api.buffer.DataType.FLOAT, shape);
        long n = a.length();
        for (long i = 0; i < n; i++) {
            a.putScalar(i, (rng.nextDouble() * 2 - 1) * k);
        }
        return a;
    }

    public int inputSize() {
        return inputSize;
    }

    public int hiddenSize() {
        return hiddenSize;
    }

    public int numLayers() {
        return numLayers;
    }

    /** The parameters in {@link #run}'s order: per layer, forward then reverse, {@code weight_ih, weight_hh, bias_ih, bias_hh}. */
    public Tensor[] weights() {
        Tensor[] w = new Tensor[numLayers * 8];
        int k = 0;
        for (int l = 0; l < numLayers; l++) {
            for (String suffix : new String[]{"", "_reverse"}) {
                w[k++] = parameter("weight_ih_l" + l + suffix);
                w[k++] = parameter("weight_hh_l" + l + suffix);
                w[k++] = parameter("bias_ih_l" + l + suffix);
                w[k++] = parameter("bias_hh_l" + l + suffix);
            }
        }
        return w;
    }

    /** {@code x [batch, seq, input]} → {@code [batch, seq, 2·hidden]} (zero initial states). */
    public Tensor forward(Tensor x) {
        if (x.rank() != 3 || x.size(2) != inputSize) {
            throw new IllegalArgumentException("LSTM input must be [batch, seq, " + inputSize + "], got "
                    + java.util.Arrays.toString(x.shape()));
        }
        return run(x, weights(), numLayers, dropout, isTraining(), rng);
    }

    /**
     * The LSTM as a function of its input and weights (in {@link #weights()}'s order), so that
     * gradient checks can perturb every tensor.
     */
    public static Tensor run(Tensor x, Tensor[] w, int numLayers, double dropout, boolean training, Rng rng) {
        Tensor in = x;
        for (int l = 0; l < numLayers; l++) {
            int k = l * 8;
            Tensor fwd = direction(in, w[k], w[k + 1], w[k + 2], w[k + 3], false);
            Tensor bwd = direction(in, w[k + 4], w[k + 5], w[k + 6], w[k + 7], true);
            in = Ops.concat(2, fwd, bwd);
            if (l < numLayers - 1 && dropout > 0) {
                in = Ops.dropout(in, dropout, training, rng);
            }
        }
        return in;
    }

    /** One direction of one layer: {@code [batch, seq, in]} → {@code [batch, seq, H]}, outputs at their own positions. */
    private static Tensor direction(Tensor x, Tensor wih, Tensor whh, Tensor bih, Tensor bhh, boolean reverse) {
        long b = x.size(0);
        int s = (int) x.size(1);
        long h = whh.size(1);
        // the input projections of every step at once: [batch, seq, 4H]
        Tensor xg = Ops.linear(x, wih, bih);
        Tensor hPrev = Tensor.constant(Nd4j.zeros(x.value().dataType(), b, h));
        Tensor cPrev = Tensor.constant(Nd4j.zeros(x.value().dataType(), b, h));
        Tensor[] out = new Tensor[s];
        for (int step = 0; step < s; step++) {
            int t = reverse ? s - 1 - step : step;
            Tensor gates = Ops.add(Ops.reshape(Ops.slice(xg, 1, t, t + 1), b, 4 * h), Ops.linear(hPrev, whh, bhh));   // [batch, 4H]
            Tensor i = Ops.sigmoid(Ops.slice(gates, 1, 0, h));
            Tensor f = Ops.sigmoid(Ops.slice(gates, 1, h, 2 * h));
            Tensor g = Ops.tanh(Ops.slice(gates, 1, 2 * h, 3 * h));
            Tensor o = Ops.sigmoid(Ops.slice(gates, 1, 3 * h, 4 * h));
            cPrev = Ops.add(Ops.mul(f, cPrev), Ops.mul(i, g));
            hPrev = Ops.mul(o, Ops.tanh(cPrev));
            out[t] = Ops.reshape(hPrev, b, 1, h);
        }
        return s == 1 ? out[0] : Ops.concat(1, out);
    }
}
