package org.peft4j.core.model.gpt2;

import org.peft4j.core.model.decoder.DecoderBlock;
import org.peft4j.core.nn.Activation;
import org.peft4j.core.nn.Dropout;
import org.peft4j.core.nn.LayerNorm;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Mlp;
import org.peft4j.core.nn.MultiHeadAttention;
import org.peft4j.core.tensor.Rng;

/**
 * One GPT-2 block (HF {@code GPT2Block}), pre-norm:
 * {@code x += attn(ln_1(x)); x += mlp(ln_2(x))}. Children keep HF names: {@code ln_1},
 * {@code attn} ({@code c_attn} fused q|k|v and {@code c_proj}, Conv1D weights {@code [in, out]}),
 * {@code ln_2}, {@code mlp} ({@code c_fc}, {@code c_proj}).
 */
public final class Gpt2Block extends DecoderBlock {

    Gpt2Block(Gpt2Config c, int layer, Rng init, Rng dropout) {
        super(c.nEmbd(), layer, "ln_1", "attn", "ln_2", "mlp");
        int h = c.nEmbd();
        registerModule("ln_1", new LayerNorm(h, c.layerNormEpsilon()));
        registerModule("attn", MultiHeadAttention.builder(h, c.nHead())
                .fusedQkv("c_attn").output("c_proj").bias(true).fanInFanOut(true).causal(true)
                .attentionDropout(c.attnPdrop(), dropout).outputDropout(c.residPdrop(), dropout)
                .scale(c.scaleAttnWeights() ? 1.0 / Math.sqrt(c.headDim()) : 1.0)
                .layerIndex(layer).initRng(init).build());
        registerModule("ln_2", new LayerNorm(h, c.layerNormEpsilon()));
        registerModule("mlp", new Mlp("c_fc", new Linear(h, c.nInner(), true, true, init),
                new Activation(c.activationFunction()), "c_proj", new Linear(c.nInner(), h, true, true, init),
                new Dropout(c.residPdrop(), dropout)));
    }
}
