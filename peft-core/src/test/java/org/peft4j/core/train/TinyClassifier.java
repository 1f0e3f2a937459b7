package org.peft4j.core.train;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

/**
 * Test model: masked mean of token embeddings {@code [B, D]} → dense → ReLU → dropout →
 * dense → logits {@code [B, C]}. Parameters: {@code embeddings.weight}, {@code fc1.weight},
 * {@code fc1.bias}, {@code fc2.weight}, {@code fc2.bias} (HF-style names).
 */
final class TinyClassifier extends Module {

    static final class Dense extends Module {
        Dense(Rng rng, int in, int out) {
            registerParameter("weight", new Parameter(normal(rng, 1.0 / Math.sqrt(in), out, in)));
            registerParameter("bias", new Parameter(Nd4j.zeros(out)));
        }

        Tensor forward(Tensor x) {
            return Ops.linear(x, parameter("weight"), parameter("bias"));
        }
    }

    static final class Embedding extends Module {
        Embedding(Rng rng, int vocab, int dim) {
            registerParameter("weight", new Parameter(normal(rng, 0.5, vocab, dim)));
        }
    }

    final Rng dropoutRng;
    private final double dropout;

    TinyClassifier(long seed, int vocab, int dim, int hidden, int classes, double dropout) {
        Rng init = new Rng(seed);
        registerModule("embeddings", new Embedding(init, vocab, dim));
        registerModule("fc1", new Dense(init, dim, hidden));
        registerModule("fc2", new Dense(init, hidden, classes));
        this.dropout = dropout;
        this.dropoutRng = new Rng(seed ^ 0x5DEECE66DL);
    }

    static INDArray normal(Rng rng, double std, long... shape) {
        int n = 1;
        for (long d : shape) {
            n *= (int) d;
        }
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (rng.nextGaussian() * std);
        }
        return Nd4j.createFromArray(v).reshape(shape);
    }

    Tensor logits(Batch b) {
        long bs = b.size();
        long t = b.seqLength();
        Tensor emb = Ops.embedding(child("embeddings").parameter("weight"), b.inputIds());   // [B, T, D]
        Tensor mask = Tensor.constant(b.attentionMask().reshape(bs, t, 1));
        Tensor pooled = Ops.div(Ops.sum(Ops.mul(emb, mask), false, 1),
                Tensor.constant(b.attentionMask().sum(true, 1)));                                // [B, D]
        Tensor h = Ops.relu(child("fc1", Dense.class).forward(pooled));
        h = Ops.dropout(h, dropout, isTraining(), dropoutRng);
        return child("fc2", Dense.class).forward(h);                                            // [B, C]
    }

    static Tensor loss(Module m, Batch b) {
        return Ops.crossEntropy(((TinyClassifier) m).logits(b), b.labels(), Ops.Reduction.MEAN);
    }
}
