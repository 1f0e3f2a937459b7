package org.peft4j.core.model.llama;

import org.peft4j.core.model.decoder.DecoderLayer;
import org.peft4j.core.nn.Activation;
import org.peft4j.core.nn.AttentionContext;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.MultiHeadAttention;
import org.peft4j.core.nn.RMSNorm;
import org.peft4j.core.nn.RotaryEmbedding;
import org.peft4j.core.nn.SwiGluMlp;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

/**
 * One LLaMA decoder layer (HF {@code LlamaDecoderLayer}, also Mistral/Qwen2), pre-norm:
 * {@code x += self_attn(input_layernorm(x)); x += mlp(post_attention_layernorm(x))}. The
 * attention has {@code q_proj, k_proj, v_proj, o_proj} with rotary positions and grouped-query
 * heads; the MLP is SwiGLU {@code down_proj(silu(gate_proj(x)) * up_proj(x))}.
 */
public final class LlamaDecoderLayer extends Module implements DecoderLayer {

    LlamaDecoderLayer(LlamaConfig c, int layer, RotaryEmbedding rotary, Rng init, Rng dropout) {
        int h = c.hiddenSize();
        registerModule("self_attn", MultiHeadAttention.builder(h, c.numAttentionHeads())
                .numKvHeads(c.numKeyValueHeads()).headDim(c.headDim())
                .projections("q_proj", "k_proj", "v_proj").output("o_proj")
                .biases(c.qkvBias(), c.qkvBias(), c.qkvBias(), c.outputBias())
                .causal(true).rotary(rotary).attentionDropout(c.attentionDropout(), dropout)
                .layerIndex(layer).initRng(init).build());
        boolean b = c.mlpBias();
        int inter = c.intermediateSize();
        registerModule("mlp", new SwiGluMlp("gate_proj", new Linear(h, inter, b, init), "up_proj",
                new Linear(h, inter, b, init), "down_proj", new Linear(inter, h, b, init), new Activation("silu")));
        registerModule("input_layernorm", new RMSNorm(h, c.rmsNormEps()));
        registerModule("post_attention_layernorm", new RMSNorm(h, c.rmsNormEps()));
    }

    /** {@code x [B, T, hidden]} → {@code [B, T, hidden]}. */
    public Tensor forward(Tensor x, AttentionContext ctx) {
        Tensor a = child("self_attn", MultiHeadAttention.class)
                .forward(child("input_layernorm", UnaryModule.class).forward(x), ctx);
        x = Ops.add(x, a);
        Tensor m = child("mlp", UnaryModule.class).forward(child("post_attention_layernorm", UnaryModule.class).forward(x));
        return Ops.add(x, m);
    }
}
