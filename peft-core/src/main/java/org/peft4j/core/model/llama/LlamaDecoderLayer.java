package org.peft4j.core.model.llama;

import org.peft4j.core.model.decoder.DecoderLayer;
import org.peft4j.core.nn.Activation;
import org.peft4j.core.nn.AttentionContext;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.ResidualHook;
import org.peft4j.core.nn.ResidualHookSite;
import java.util.Map;
import org.peft4j.core.nn.MultiHeadAttention;
import org.peft4j.core.nn.RMSNorm;
import org.peft4j.core.nn.RotaryEmbedding;
import org.peft4j.core.nn.SwiGluMlp;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

/**
 * One LLaMA decoder layer (HF {@code LlamaDecoderLayer}, also Mistral/Qwen2), pre-norm:
 * {@code x += self_attn(input_layernorm(x)); x += mlp(post_attention_layernorm(x))}. The
 * attention has {@code q_proj, k_proj, v_proj, o_proj} with rotary positions and grouped-query
 * heads; the MLP is SwiGLU {@code down_proj(silu(gate_proj(x)) * up_proj(x))}.
 */
public final class LlamaDecoderLayer extends Module implements DecoderLayer, ResidualHookSite {
    /** Residual-hook slots ({@link ResidualHookSite}), AdapterHub's module names: after attention, after the MLP. */
    public static final String ATTENTION_SLOT = "attention_adapters";
    public static final String OUTPUT_SLOT = "output_adapters";
    private int hidden;
    private int layerIndex;

    LlamaDecoderLayer(LlamaConfig c, int layer, RotaryEmbedding rotary, Rng init, Rng dropout) {
        this.hidden = c.hiddenSize();
        this.layerIndex = layer;
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
        x = ResidualHook.step(this, ATTENTION_SLOT, a, x, null);
        Tensor m = child("mlp", UnaryModule.class).forward(child("post_attention_layernorm", UnaryModule.class).forward(x));
        return ResidualHook.step(this, OUTPUT_SLOT, m, x, null);
    }

    @Override
    public Map<String, SubLayer> residualHookSlots() {
        Map<String, SubLayer> m = new java.util.LinkedHashMap<>();
        m.put(ATTENTION_SLOT, SubLayer.ATTENTION);
        m.put(OUTPUT_SLOT, SubLayer.FEED_FORWARD);
        return m;
    }

    @Override
    public int residualWidth() {
        return hidden;
    }

    @Override
    public int layerIndex() {
        return layerIndex;
    }

    @Override
    public void insertResidualHook(String slot, Module hook) {
        registerResidualHook(slot, hook, residualHookSlots().keySet());
    }
}
