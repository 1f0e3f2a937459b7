package org.peft4j.prompt;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

/**
 * Where one adapter's virtual-token vectors come from: {@link #output()} is {@code [n, outDim]},
 * the tensor PEFT saves as {@code prompt_embeddings}. Parameter names are PEFT's under
 * {@code prompt_encoder.<adapter>.} ({@code embedding.weight}, {@code mlp_head.0.weight},
 * {@code lstm_head.weight_ih_l0}, {@code transform.0.weight}).
 */
public abstract class PromptSource extends Module {

    /** {@code [n, outDim]}. */
    public abstract Tensor output();

    /** True when the output is computed by an encoder (its weights go to the extra resume file). */
    public abstract boolean hasEncoder();

    /** A plain table {@code embedding.weight [n, dim]}: prompt tuning, prefix tuning without projection, and every loaded adapter. */
    public static final class Table extends PromptSource {
        public Table(INDArray weight) {
            registerModule("embedding", new Embedding(weight, -1));
        }

        public org.peft4j.core.nn.Parameter weight() {
            return child("embedding", Embedding.class).weight();
        }

        @Override
        public Tensor output() {
            return weight();
        }

        @Override
        public boolean hasEncoder() {
            return false;
        }
    }

    /**
     * P-tuning's MLP encoder (PEFT's {@code PromptEncoder}, type MLP): {@code embedding [n, d]} →
     * Linear(d, h) → ReLU → Linear(h, h) → ReLU → Linear(h, d).
     */
    public static final class Mlp extends PromptSource {
        public Mlp(int n, int d, int h, Rng rng) {
            registerModule("embedding", new Embedding(n, d, rng));
            Plain head = registerModule("mlp_head", new Plain());
            head.add("0", new Linear(d, h, true, rng));
            head.add("2", new Linear(h, h, true, rng));
            head.add("4", new Linear(h, d, true, rng));
        }

        @Override
        public Tensor output() {
            Module head = child("mlp_head");
            Tensor x = child("embedding", Embedding.class).weight();
            x = Ops.relu(head.child("0", Linear.class).forward(x));
            x = Ops.relu(head.child("2", Linear.class).forward(x));
            return head.child("4", Linear.class).forward(x);
        }

        @Override
        public boolean hasEncoder() {
            return true;
        }
    }

    /**
     * P-tuning's LSTM encoder (PEFT's {@code PromptEncoder}, type LSTM): {@code embedding [n, d]} as a
     * batch of one sequence → bidirectional LSTM(d, h, layers, dropout) {@code [1, n, 2h]} →
     * Linear(2h, 2h) → ReLU → Linear(2h, d).
     */
    public static final class LstmEncoder extends PromptSource {
        public LstmEncoder(int n, int d, int h, int layers, double dropout, Rng rng) {
            registerModule("embedding", new Embedding(n, d, rng));
            registerModule("lstm_head", new Lstm(d, h, layers, dropout, rng));
            Plain head = registerModule("mlp_head", new Plain());
            head.add("0", new Linear(2 * h, 2 * h, true, rng));
            head.add("2", new Linear(2 * h, d, true, rng));
        }

        @Override
        public Tensor output() {
            Tensor e = child("embedding", Embedding.class).weight();
            long n = e.size(0);
            Tensor seq = child("lstm_head", Lstm.class).forward(Ops.reshape(e, 1, n, e.size(1)));   // [1, n, 2h]
            Module head = child("mlp_head");
            Tensor x = Ops.relu(head.child("0", Linear.class).forward(Ops.reshape(seq, n, seq.size(2))));
            return head.child("2", Linear.class).forward(x);
        }

        @Override
        public boolean hasEncoder() {
            return true;
        }
    }

    /**
     * Prefix tuning with {@code prefix_projection} (PEFT's {@code PrefixEncoder}):
     * {@code embedding [n, tokenDim]} → Linear(tokenDim, h) → tanh → Linear(h, layers·2·tokenDim).
     */
    public static final class PrefixProjection extends PromptSource {
        public PrefixProjection(int n, int tokenDim, int h, int outDim, Rng rng) {
            registerModule("embedding", new Embedding(n, tokenDim, rng));
            Plain t = registerModule("transform", new Plain());
            t.add("0", new Linear(tokenDim, h, true, rng));
            t.add("2", new Linear(h, outDim, true, rng));
        }

        @Override
        public Tensor output() {
            Module t = child("transform");
            Tensor x = Ops.tanh(t.child("0", Linear.class).forward(child("embedding", Embedding.class).weight()));
            return t.child("2", Linear.class).forward(x);
        }

        @Override
        public boolean hasEncoder() {
            return true;
        }
    }

    /** A container module (PyTorch's {@code Sequential} names: children "0", "2", ...). */
    static final class Plain extends Module {
        void add(String name, Module m) {
            registerModule(name, m);
        }
    }

    /** N(0, 1) table, as {@code torch.nn.Embedding}'s default init. */
    static INDArray normal(Rng rng, long n, long d) {
        INDArray a = Nd4j.create(org.nd4j.linalg.api.buffer.DataType.FLOAT, n, d);
        for (long i = 0; i < a.length(); i++) {
            a.putScalar(i, rng.nextGaussian());
        }
        return a;
    }
}
