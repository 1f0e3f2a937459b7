package org.peft4j.core.model.bert;

import org.peft4j.core.model.WeightSource;
import org.peft4j.core.nn.Activation;
import org.peft4j.core.nn.AttentionContext;
import org.peft4j.core.nn.Dropout;
import org.peft4j.core.nn.LayerNorm;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.MultiHeadAttention;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

/**
 * One post-LayerNorm encoder block ({@code encoder.layer.N}):
 * <pre>
 * a = LayerNorm(x + dropout(attention.output.dense(attention.self(x))))   # attention.output.LayerNorm
 * y = LayerNorm(a + dropout(output.dense(act(intermediate.dense(a)))))    # output.LayerNorm
 * </pre>
 * Children: {@code attention} ({@code self}: a {@link MultiHeadAttention} with {@code query},
 * {@code key}, {@code value} and no output projection; {@code output}: {@code dense},
 * {@code LayerNorm}, {@code dropout}), {@code intermediate} ({@code dense}), {@code output}
 * ({@code dense}, {@code LayerNorm}, {@code dropout}). Sub-modules are looked up by name at
 * forward time, so LoRA and adapters can replace them.
 */
public class BertLayer extends Module {

    BertLayer(BertConfig c, int index, WeightSource w, Rng dropoutRng) {
        String p = "encoder.layer." + index + ".";
        registerModule("attention", new Attention(c, index, p + "attention", w, dropoutRng));
        registerModule("intermediate", new Intermediate(c, p + "intermediate", w));
        registerModule("output", new Output(c, p + "output", c.intermediateSize(), w, dropoutRng));
    }

    /** {@code x [B, T, hidden]} → {@code [B, T, hidden]}; {@code ctx} carries the padding mask (and any prefix). */
    public Tensor forward(Tensor x, AttentionContext ctx) {
        Tensor a = child("attention", Attention.class).forward(x, ctx);
        Tensor i = child("intermediate", UnaryModule.class).forward(a);
        return child("output", Output.class).forward(i, a);
    }

    /**
     * Std of Hugging Face BERT's normal initialisation of fresh weights and embeddings (its
     * {@code initializer_range} default; the bundled configs do not change it).
     */
    static final double INIT_STD = 0.02;

    static Linear linear(WeightSource w, String key, int in, int out) {
        return new Linear(w.get(key + ".weight", new long[]{out, in}, WeightSource.Init.NORMAL, INIT_STD),
                w.get(key + ".bias", new long[]{out}, WeightSource.Init.ZEROS, INIT_STD), false);
    }

    static LayerNorm layerNorm(WeightSource w, String key, BertConfig c) {
        LayerNorm ln = new LayerNorm(c.hiddenSize(), c.layerNormEps());
        ln.weight().setValue(w.get(key + ".weight", new long[]{c.hiddenSize()}, WeightSource.Init.ONES, INIT_STD));
        ln.bias().setValue(w.get(key + ".bias", new long[]{c.hiddenSize()}, WeightSource.Init.ZEROS, INIT_STD));
        return ln;
    }

    /** {@code attention}: children {@code self} (multi-head attention) and {@code output}. */
    public static class Attention extends Module {
        Attention(BertConfig c, int index, String prefix, WeightSource w, Rng dropoutRng) {
            MultiHeadAttention self = MultiHeadAttention.builder(c.hiddenSize(), c.numAttentionHeads())
                    .projections("query", "key", "value")
                    .output(null)
                    .bias(true)
                    .attentionDropout(c.attentionProbsDropoutProb(), dropoutRng)
                    .layerIndex(index)
                    .initRng(null)   // zero placeholders: the values come from the weight source below
                    .build();
            // the projections' values come from the weight source (checkpoint or HF init)
            for (String n : new String[]{"query", "key", "value"}) {
                self.replace(n, linear(w, prefix + ".self." + n, c.hiddenSize(), c.hiddenSize()));
            }
            registerModule("self", self);
            registerModule("output", new Output(c, prefix + ".output", c.hiddenSize(), w, dropoutRng));
        }

        public Tensor forward(Tensor x, AttentionContext ctx) {
            Tensor context = child("self", MultiHeadAttention.class).forward(x, ctx);
            return child("output", Output.class).forward(context, x);
        }
    }

    /** {@code intermediate}: {@code act(dense(x))}, hidden → intermediate size. */
    public static class Intermediate extends Module implements UnaryModule {
        private final Activation act;

        Intermediate(BertConfig c, String prefix, WeightSource w) {
            registerModule("dense", linear(w, prefix + ".dense", c.hiddenSize(), c.intermediateSize()));
            act = new Activation(c.hiddenAct());
        }

        @Override
        public Tensor forward(Tensor x) {
            return act.forward(child("dense", UnaryModule.class).forward(x));
        }

        @Override
        protected String describe() {
            return "Intermediate(" + act.name() + ")";
        }
    }

    /**
     * {@code attention.output} and {@code output}: {@code LayerNorm(residual + dropout(dense(x)))}
     * (Hugging Face's BertSelfOutput / BertOutput).
     */
    public static class Output extends Module {
        Output(BertConfig c, String prefix, int in, WeightSource w, Rng dropoutRng) {
            registerModule("dense", linear(w, prefix + ".dense", in, c.hiddenSize()));
            registerModule("LayerNorm", layerNorm(w, prefix + ".LayerNorm", c));
            registerModule("dropout", new Dropout(c.hiddenDropoutProb(), dropoutRng));
        }

        public Tensor forward(Tensor x, Tensor residual) {
            Tensor h = child("dense", UnaryModule.class).forward(x);
            h = child("dropout", UnaryModule.class).forward(h);
            Module ln = child("LayerNorm");
            if (ln instanceof LayerNorm l) {
                // the residual sum and the norm in one fused op (the sum is never materialised)
                return l.forwardResidual(h, residual);
            }
            // a replaced norm (e.g. wrapped by modules_to_save) sees the sum like any input
            return child("LayerNorm", UnaryModule.class).forward(Ops.add(h, residual));
        }
    }
}
