package org.peft4j.core.model.llama;

import org.peft4j.core.model.decoder.DecoderBlock;
import org.peft4j.core.nn.Activation;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.MultiHeadAttention;
import org.peft4j.core.nn.RMSNorm;
import org.peft4j.core.nn.RotaryEmbedding;
import org.peft4j.core.nn.SwiGluMlp;
import org.peft4j.core.tensor.Rng;

/**
 * One LLaMA decoder layer (HF {@code LlamaDecoderLayer}, also Mistral/Qwen2), pre-norm:
 * {@code x += self_attn(input_layernorm(x)); x += mlp(post_attention_layernorm(x))}. The
 * attention has {@code q_proj, k_proj, v_proj, o_proj} with rotary positions and grouped-query
 * heads; the MLP is SwiGLU {@code down_proj(silu(gate_proj(x)) * up_proj(x))}.
 */
public final class LlamaDecoderLayer extends DecoderBlock {

    LlamaDecoderLayer(LlamaConfig c, int layer, RotaryEmbedding rotary, Rng init, Rng dropout) {
        super(c.hiddenSize(), layer, "input_layernorm", "self_attn", "post_attention_layernorm", "mlp");
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
}
