package org.peft4j.core.model.llama;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.Backbone;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.model.BackboneOutput;
import org.peft4j.core.model.decoder.DecoderLayer;
import org.peft4j.core.model.decoder.ModuleList;
import org.peft4j.core.nn.AttentionContext;
import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.EmbeddingLayer;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.RMSNorm;
import org.peft4j.core.nn.RotaryEmbedding;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * The LLaMA decoder stack (HF {@code LlamaModel}): {@code embed_tokens}, {@code layers.N},
 * final RMS {@code norm}. One rotary table ({@code rope_theta}, {@code head_dim}) is shared by
 * all layers.
 *
 * <p>Rotary positions run from the cache length upwards for every row. HF's {@code generate()}
 * instead starts each left-padded row at 0 on its first real token; since rotary attention
 * scores depend only on the distance between query and key, both give the same attention
 * (up to float rounding of the angle tables), and pads are masked out anyway.
 */
public final class LlamaModel extends Module implements Backbone {
    private final LlamaConfig config;

    LlamaModel(LlamaConfig c, Rng init, Rng dropout) {
        this(c, init, dropout, null);
    }

    /** {@code afterLayer}, when given, sees each decoder layer (and its index) right after it is built. */
    LlamaModel(LlamaConfig c, Rng init, Rng dropout, java.util.function.ObjIntConsumer<LlamaDecoderLayer> afterLayer) {
        this.config = c;
        RotaryEmbedding rotary = new RotaryEmbedding(c.headDim(), c.ropeTheta());
        registerModule("embed_tokens", new Embedding(c.vocabSize(), c.hiddenSize(), init));
        List<LlamaDecoderLayer> layers = new ArrayList<>();
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            LlamaDecoderLayer layer = new LlamaDecoderLayer(c, i, rotary, init, dropout);
            if (afterLayer != null) {
                afterLayer.accept(layer, i);
            }
            layers.add(layer);
        }
        registerModule("layers", new ModuleList<>(LlamaDecoderLayer.class, layers));
        registerModule("norm", new RMSNorm(c.hiddenSize(), c.rmsNormEps()));
    }

    public LlamaConfig config() {
        return config;
    }

    public EmbeddingLayer embedTokens() {
        return child("embed_tokens", EmbeddingLayer.class);
    }

    @SuppressWarnings("unchecked")
    public ModuleList<LlamaDecoderLayer> layers() {
        return (ModuleList<LlamaDecoderLayer>) child("layers", ModuleList.class);
    }

    /** Token embeddings {@code embed_tokens} {@code [B, T, hidden]} of ids {@code [B, T]}. */
    @Override
    public Tensor embed(INDArray ids) {
        return embedTokens().forward(ids);
    }

    /**
     * The layers on the input embeddings with rotary positions
     * {@code offset..offset+T−1} for every row (offset {@link BackboneInputs#resolvedPositionOffset}:
     * prefix + cached tokens by default; prefix keys are not rotated), then {@code norm}. Hidden
     * states on request: HF's {@code hidden_states} (the embeddings, each layer's output, the last
     * replaced by the {@code norm} output).
     */
    @Override
    public BackboneOutput forward(BackboneInputs inputs) {
        inputs.check(this);
        Tensor x = inputs.inputEmbeddings();
        AttentionContext ctx = inputs.attentionContext(numLayers());
        List<Tensor> hidden = inputs.outputHiddenStates() ? new ArrayList<>() : null;
        x = DecoderLayer.runStack(x, layers(), child("norm", UnaryModule.class), ctx, hidden);
        return new BackboneOutput(x, hidden, ctx.recordedAttentions());
    }

    @Override
    public int hiddenSize() {
        return config.hiddenSize();
    }

    @Override
    public int numLayers() {
        return config.numHiddenLayers();
    }

    @Override
    public int numAttentionHeads() {
        return config.numAttentionHeads();
    }

    @Override
    public int numKeyValueHeads() {
        return config.numKeyValueHeads();
    }

    @Override
    public int headDim() {
        return config.headDim();
    }

    /**
     * {@code max_position_embeddings}, or {@code sliding_window} when smaller (sliding-window
     * attention is not implemented, so longer sequences are refused).
     */
    @Override
    public int maxPositions() {
        return config.slidingWindow() == null ? config.maxPositionEmbeddings()
                : Math.min(config.maxPositionEmbeddings(), config.slidingWindow());
    }

    @Override
    public int vocabSize() {
        return config.vocabSize();
    }

    @Override
    public boolean isCausal() {
        return true;
    }
}
