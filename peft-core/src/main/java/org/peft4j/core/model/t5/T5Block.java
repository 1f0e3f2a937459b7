package org.peft4j.core.model.t5;

import org.peft4j.core.nn.Activation;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.ModuleList;
import org.peft4j.core.nn.RMSNorm;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * One T5 block (HF {@code T5Block}): {@code layer.0} self-attention, in the decoder
 * {@code layer.1} cross-attention, then the feed-forward ({@code layer.1} / {@code layer.2}); each
 * sub-layer is pre-norm, {@code x = x + dropout(sublayer(layer_norm(x)))}, with T5LayerNorm =
 * {@link RMSNorm} (no mean, no bias).
 */
public final class T5Block extends Module {
    private final boolean decoder;
    private final int index;

    T5Block(T5Config c, boolean decoder, int index, Rng init, Rng dropout) {
        this.decoder = decoder;
        this.index = index;
        List<Module> layers = new ArrayList<>();
        layers.add(new SelfAttentionLayer(c, decoder, index == 0, init, dropout));
        if (decoder) {
            layers.add(new CrossAttentionLayer(c, init, dropout));
        }
        layers.add(new FeedForwardLayer(c, init, dropout));
        registerModule("layer", new ModuleList(layers));
    }

    ModuleList layers() {
        return child("layer", ModuleList.class);
    }

    public SelfAttentionLayer selfAttentionLayer() {
        return layers().get(0, SelfAttentionLayer.class);
    }

    public CrossAttentionLayer crossAttentionLayer() {
        if (!decoder) {
            throw new IllegalStateException("an encoder block has no cross-attention");
        }
        return layers().get(1, CrossAttentionLayer.class);
    }

    public FeedForwardLayer feedForwardLayer() {
        return layers().get(decoder ? 2 : 1, FeedForwardLayer.class);
    }

    int index() {
        return index;
    }

    /** {@code x [B, T, d_model]} through the block, attending as {@code s} says. */
    Tensor forward(Tensor x, T5Stack.Pass s) {
        x = selfAttentionLayer().forward(x, s, index);
        if (decoder) {
            x = crossAttentionLayer().forward(x, s, index);
        }
        return feedForwardLayer().forward(x);
    }

    static Tensor dropout(Module m, Tensor x, double p, Rng rng) {
        return p > 0 && m.isTraining() ? Ops.dropout(x, p, true, rng) : x;
    }

    /** HF {@code T5LayerSelfAttention}: {@code SelfAttention}, {@code layer_norm}. */
    public static final class SelfAttentionLayer extends Module {
        private final double p;
        private final Rng rng;

        SelfAttentionLayer(T5Config c, boolean decoder, boolean relativeBias, Rng init, Rng dropout) {
            this.p = c.dropoutRate();
            this.rng = dropout;
            registerModule("SelfAttention", new T5Attention(c, decoder, relativeBias, init, dropout));
            registerModule("layer_norm", new RMSNorm(c.dModel(), c.layerNormEpsilon()));
        }

        public T5Attention attention() {
            return child("SelfAttention", T5Attention.class);
        }

        Tensor forward(Tensor x, T5Stack.Pass s, int layer) {
            Tensor h = child("layer_norm", UnaryModule.class).forward(x);
            Tensor a = attention().selfAttention(h, s.bias(), s.selfMask(), s.cache(layer), s.prefixKeys(layer),
                    s.prefixValues(layer));
            return Ops.add(x, dropout(this, a, p, rng));
        }
    }

    /** HF {@code T5LayerCrossAttention}: {@code EncDecAttention}, {@code layer_norm}. */
    public static final class CrossAttentionLayer extends Module {
        private final double p;
        private final Rng rng;

        CrossAttentionLayer(T5Config c, Rng init, Rng dropout) {
            this.p = c.dropoutRate();
            this.rng = dropout;
            registerModule("EncDecAttention", new T5Attention(c, true, false, init, dropout));
            registerModule("layer_norm", new RMSNorm(c.dModel(), c.layerNormEpsilon()));
        }

        public T5Attention attention() {
            return child("EncDecAttention", T5Attention.class);
        }

        Tensor forward(Tensor x, T5Stack.Pass s, int layer) {
            Tensor h = child("layer_norm", UnaryModule.class).forward(x);
            Tensor[] kv = s.crossKeysValues(layer, attention());
            Tensor a = attention().attend(h, kv[0], kv[1], null, s.crossMask());
            return Ops.add(x, dropout(this, a, p, rng));
        }
    }

    /** HF {@code T5LayerFF}: {@code DenseReluDense}, {@code layer_norm}. */
    public static final class FeedForwardLayer extends Module {
        private final double p;
        private final Rng rng;

        FeedForwardLayer(T5Config c, Rng init, Rng dropout) {
            this.p = c.dropoutRate();
            this.rng = dropout;
            registerModule("DenseReluDense", new DenseActDense(c, init, dropout));
            registerModule("layer_norm", new RMSNorm(c.dModel(), c.layerNormEpsilon()));
        }

        Tensor forward(Tensor x) {
            Tensor h = child("layer_norm", UnaryModule.class).forward(x);
            Tensor f = child("DenseReluDense", UnaryModule.class).forward(h);
            return Ops.add(x, dropout(this, f, p, rng));
        }
    }

    /**
     * HF {@code T5DenseActDense} ({@code wo(dropout(act(wi(x))))}) or, gated,
     * {@code T5DenseGatedActDense} ({@code wo(dropout(act(wi_0(x)) · wi_1(x)))}).
     */
    public static final class DenseActDense extends Module implements UnaryModule {
        private final boolean gated;
        private final double p;
        private final Rng rng;

        DenseActDense(T5Config c, Rng init, Rng dropout) {
            this.gated = c.isGated();
            this.p = c.dropoutRate();
            this.rng = dropout;
            if (gated) {
                registerModule("wi_0", new Linear(c.dModel(), c.dFf(), false, init));
                registerModule("wi_1", new Linear(c.dModel(), c.dFf(), false, init));
            } else {
                registerModule("wi", new Linear(c.dModel(), c.dFf(), false, init));
            }
            registerModule("wo", new Linear(c.dFf(), c.dModel(), false, init));
            registerModule("act", new Activation(c.denseActivation()));
        }

        @Override
        public Tensor forward(Tensor x) {
            UnaryModule act = child("act", UnaryModule.class);
            Tensor h = gated
                    ? Ops.mul(act.forward(child("wi_0", UnaryModule.class).forward(x)), child("wi_1", UnaryModule.class).forward(x))
                    : act.forward(child("wi", UnaryModule.class).forward(x));
            return child("wo", UnaryModule.class).forward(dropout(this, h, p, rng));
        }
    }
}
