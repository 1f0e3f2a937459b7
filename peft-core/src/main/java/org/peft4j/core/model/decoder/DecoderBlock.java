package org.peft4j.core.model.decoder;

import java.util.LinkedHashMap;
import java.util.Map;

import org.peft4j.core.nn.AttentionContext;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.MultiHeadAttention;
import org.peft4j.core.nn.ResidualHook;
import org.peft4j.core.nn.ResidualHookSite;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Tensor;

/**
 * A pre-norm decoder block, as GPT-2's and LLaMA's are:
 * {@code x += attn(norm1(x)); x += mlp(norm2(x))}, each residual step a {@link ResidualHook} slot
 * (AdapterHub's module names {@code attention_adapters}, {@code output_adapters}). A family
 * registers its children under its Hugging Face names and passes those names here.
 */
public abstract class DecoderBlock extends Module implements DecoderLayer, ResidualHookSite {
    /** Residual-hook slots ({@link ResidualHookSite}): after attention, after the MLP. */
    public static final String ATTENTION_SLOT = "attention_adapters";
    public static final String OUTPUT_SLOT = "output_adapters";

    private final int hidden;
    private final int layerIndex;
    private final String norm1;
    private final String attention;
    private final String norm2;
    private final String mlp;

    protected DecoderBlock(int hidden, int layerIndex, String norm1, String attention, String norm2, String mlp) {
        this.hidden = hidden;
        this.layerIndex = layerIndex;
        this.norm1 = norm1;
        this.attention = attention;
        this.norm2 = norm2;
        this.mlp = mlp;
    }

    /** {@code x [B, T, hidden]} → {@code [B, T, hidden]}. */
    @Override
    public Tensor forward(Tensor x, AttentionContext ctx) {
        Tensor a = child(attention, MultiHeadAttention.class).forward(child(norm1, UnaryModule.class).forward(x), ctx);
        x = ResidualHook.step(this, ATTENTION_SLOT, a, x, null);
        Tensor m = child(mlp, UnaryModule.class).forward(child(norm2, UnaryModule.class).forward(x));
        return ResidualHook.step(this, OUTPUT_SLOT, m, x, null);
    }

    @Override
    public Map<String, SubLayer> residualHookSlots() {
        Map<String, SubLayer> m = new LinkedHashMap<>();
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
