package org.peft4j.core.model.gpt2;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.model.Backbone;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.model.BackboneOutput;
import org.peft4j.core.model.decoder.DecoderLayer;
import org.peft4j.core.model.decoder.ModuleList;
import org.peft4j.core.nn.AttentionContext;
import org.peft4j.core.nn.Dropout;
import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.EmbeddingLayer;
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
public final class Gpt2Model extends Module implements Backbone {
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

    /** Token embeddings {@code wte} {@code [B, T, hidden]} of ids {@code [B, T]} (no positions). */
    @Override
    public Tensor embed(INDArray ids) {
        return wte().forward(ids);
    }

    /**
     * {@code wpe} positions added to the input embeddings (positions from
     * {@link BackboneInputs#positions}: offset + index minus the padding before each token, the
     * offset counting any prefix and cached tokens), dropout, the blocks with the context's mask,
     * prefixes and caches, and {@code ln_f}. Hidden states on request: HF's {@code hidden_states}
     * (the embeddings, each block's output, the last replaced by the {@code ln_f} output).
     */
    @Override
    public BackboneOutput forward(BackboneInputs inputs) {
        inputs.check(this);
        INDArray pos = Nd4j.createFromArray(inputs.positions());                        // [B, T]
        Tensor x = Ops.add(inputs.inputEmbeddings(), child("wpe", EmbeddingLayer.class).forward(pos));
        x = child("drop", UnaryModule.class).forward(x);
        AttentionContext ctx = inputs.attentionContext(numLayers());
        List<Tensor> hidden = inputs.outputHiddenStates() ? new ArrayList<>() : null;
        x = DecoderLayer.runStack(x, blocks(), child("ln_f", UnaryModule.class), ctx, hidden);
        return new BackboneOutput(x, hidden, ctx.recordedAttentions());
    }

    @Override
    public int hiddenSize() {
        return config.nEmbd();
    }

    @Override
    public int numLayers() {
        return config.nLayer();
    }

    @Override
    public int numAttentionHeads() {
        return config.nHead();
    }

    @Override
    public int numKeyValueHeads() {
        return config.nHead();
    }

    @Override
    public int headDim() {
        return config.headDim();
    }

    @Override
    public int maxPositions() {
        return config.nPositions();
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
