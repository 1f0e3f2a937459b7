package org.peft4j.core.model.gpt2;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.decoder.DecoderInputs;
import org.peft4j.core.model.decoder.ModuleList;
import org.peft4j.core.nn.AttentionContext;
import org.peft4j.core.nn.Dropout;
import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.EmbeddingLayer;
import org.peft4j.core.nn.KVCache;
import org.peft4j.core.nn.LayerNorm;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * The GPT-2 transformer (HF {@code GPT2Model}): token embeddings {@code wte}, learned position
 * embeddings {@code wpe}, dropout {@code drop}, blocks {@code h.N}, final {@code ln_f}.
 *
 * <p>Position ids come from the attention mask (the number of real tokens before each token),
 * which is HF's default {@code arange} for unpadded or right-padded input and what HF's
 * {@code generate()} uses for left-padded prompts.
 */
public final class Gpt2Model extends Module {
    private final Gpt2Config config;

    Gpt2Model(Gpt2Config c, Rng init, Rng dropout) {
        this.config = c;
        registerModule("wte", new Embedding(c.vocabSize(), c.nEmbd(), init));
        registerModule("wpe", new Embedding(c.nPositions(), c.nEmbd(), init));
        registerModule("drop", new Dropout(c.embdPdrop(), dropout));
        List<Gpt2Block> blocks = new ArrayList<>();
        for (int i = 0; i < c.nLayer(); i++) {
            blocks.add(new Gpt2Block(c, i, init, dropout));
        }
        registerModule("h", new ModuleList<>(Gpt2Block.class, blocks));
        registerModule("ln_f", new LayerNorm(c.nEmbd(), c.layerNormEpsilon()));
    }

    public Gpt2Config config() {
        return config;
    }

    public EmbeddingLayer wte() {
        return child("wte", EmbeddingLayer.class);
    }

    @SuppressWarnings("unchecked")
    public ModuleList<Gpt2Block> blocks() {
        return (ModuleList<Gpt2Block>) child("h", ModuleList.class);
    }

    /**
     * @param ids     {@code [B, T]}
     * @param mask    {@code [B, past + T]} INT64 0/1, already validated
     * @param past    cached positions
     * @param caches  per-layer caches or null
     * @param hidden  when non-null, receives HF's {@code hidden_states} (embeddings, each block's
     *                output, the last replaced by the {@code ln_f} output)
     * @return the final hidden state {@code [B, T, hidden]} after {@code ln_f}
     */
    Tensor forward(INDArray ids, INDArray mask, int past, KVCache[] caches, List<Tensor> hidden) {
        int t = (int) ids.size(1);
        INDArray pos = DecoderInputs.toArray(DecoderInputs.positions(mask, past, t));
        Tensor x = Ops.add(wte().forward(ids), child("wpe", EmbeddingLayer.class).forward(pos));
        x = child("drop", UnaryModule.class).forward(x);
        AttentionContext ctx = AttentionContext.of(mask).withPositionOffset(past).withCaches(caches);
        ModuleList<Gpt2Block> blocks = blocks();
        for (int i = 0; i < blocks.size(); i++) {
            if (hidden != null) {
                hidden.add(x);
            }
            x = blocks.get(i).forward(x, ctx);
        }
        x = child("ln_f", UnaryModule.class).forward(x);
        if (hidden != null) {
            hidden.add(x);
        }
        return x;
    }
}
