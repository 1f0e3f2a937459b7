package org.peft4j.core.model.llama;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.decoder.ModuleList;
import org.peft4j.core.nn.AttentionContext;
import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.EmbeddingLayer;
import org.peft4j.core.nn.KVCache;
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
public final class LlamaModel extends Module {
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

    /**
     * @param ids    {@code [B, T]}
     * @param mask   {@code [B, past + T]} INT64 0/1, already validated
     * @param past   cached positions
     * @param caches per-layer caches or null
     * @param hidden when non-null, receives HF's {@code hidden_states} (embeddings, each layer's
     *               output, the last replaced by the {@code norm} output)
     * @return the final hidden state {@code [B, T, hidden]} after {@code norm}
     */
    Tensor forward(INDArray ids, INDArray mask, int past, KVCache[] caches, List<Tensor> hidden) {
        Tensor x = embedTokens().forward(ids);
        AttentionContext ctx = AttentionContext.of(mask).withPositionOffset(past).withCaches(caches);
        ModuleList<LlamaDecoderLayer> layers = layers();
        for (int i = 0; i < layers.size(); i++) {
            if (hidden != null) {
                hidden.add(x);
            }
            x = layers.get(i).forward(x, ctx);
        }
        x = child("norm", UnaryModule.class).forward(x);
        if (hidden != null) {
            hidden.add(x);
        }
        return x;
    }
}
