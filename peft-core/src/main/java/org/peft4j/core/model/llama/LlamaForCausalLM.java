package org.peft4j.core.model.llama;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.LayerLoader;
import org.peft4j.core.model.WeightSource;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.function.BiConsumer;

/**
 * A LLaMA-family causal LM (HF {@code LlamaForCausalLM}, {@code MistralForCausalLM},
 * {@code Qwen2ForCausalLM}; SmolLM/TinyLlama configs are LLaMA). Parameter names are the HF keys
 * ({@code model.embed_tokens.weight}, {@code model.layers.0.self_attn.q_proj.weight}, …,
 * {@code lm_head.weight} unless {@code tie_word_embeddings}).
 *
 * <p>Mistral's sliding window is not implemented as a mask: sequences longer than
 * {@code sliding_window} are rejected (within the window the attention is identical).
 */
public final class LlamaForCausalLM extends DecoderLM {
    /** How LLaMA is made fresh and loaded (the instance {@link #random} and {@link #load} use). */
    static final LlamaFamily FAMILY = new LlamaFamily();

    private final LlamaConfig config;
    private final ObjectNode sourceConfig;

    /**
     * @param afterLayer when non-null, sees each decoder layer (with its prefix {@code model.layers.N.})
     *                   right after it is built; the placeholders are then zeros (no random draws
     *                   for weights it replaces)
     */
    LlamaForCausalLM(LlamaConfig c, ObjectNode sourceConfig, WeightSource weights, Rng dropout,
                     BiConsumer<String, Module> afterLayer) {
        this.config = c;
        this.sourceConfig = sourceConfig;
        // the constructors' own initial values are immediately replaced by the source's
        Rng scratch = afterLayer == null ? new Rng(0) : null;
        registerModule("model", new LlamaModel(c, scratch, dropout, afterLayer == null ? null
                : (layer, i) -> afterLayer.accept("model.layers." + i + ".", layer)));
        if (!c.tieWordEmbeddings()) {
            registerModule("lm_head", new Linear(c.hiddenSize(), c.vocabSize(), false, scratch));
        }
        // HF _init_weights: normal(0, initializer_range), zero biases, RMSNorm weights 1
        fill(weights, name -> name.endsWith(".bias") ? WeightSource.Init.ZEROS
                        : name.endsWith("norm.weight") ? WeightSource.Init.ONES : WeightSource.Init.NORMAL,
                name -> c.initializerRange());
    }

    /** A freshly initialised model (HF's initialisation, seeded), in training mode. */
    public static LlamaForCausalLM random(LlamaConfig config, long seed) {
        return FAMILY.random(config, seed);
    }

    public static LlamaForCausalLM load(Path dir) throws IOException {
        return load(dir, 0L);
    }

    /**
     * Loads a Hugging Face LLaMA/Mistral/Qwen2 folder (single file or sharded). Keys may carry
     * the {@code model.} prefix or not (a bare {@code LlamaModel} save); a tied
     * {@code lm_head.weight} in the file is accepted and ignored. Every other key must be used.
     *
     * @throws IllegalArgumentException naming the folder and every missing/unexpected key or
     *         shape mismatch, or the config file and its missing keys
     */
    public static LlamaForCausalLM load(Path dir, long dropoutSeed) throws IOException {
        return FAMILY.loadLm(dir, dropoutSeed);
    }

    /**
     * Loads like {@link #load(Path, long)}, building the decoder layers one at a time and handing
     * each to {@code loader} before the next is built (e.g. to quantize its linear layers straight
     * from the checkpoint, so the full fp32 model is never in memory).
     */
    public static LlamaForCausalLM load(Path dir, long dropoutSeed, LayerLoader loader) throws IOException {
        return FAMILY.loadLm(dir, dropoutSeed, loader);
    }

    public LlamaConfig config() {
        return config;
    }

    public LlamaModel model() {
        return child("model", LlamaModel.class);
    }

    @Override
    public int vocabSize() {
        return config.vocabSize();
    }

    @Override
    public int maxPositions() {
        return model().maxPositions();
    }

    @Override
    public int numLayers() {
        return config.numHiddenLayers();
    }

    @Override
    public LlamaModel backbone() {
        return model();
    }

    @Override
    protected Tensor logits(Tensor h) {
        return config.tieWordEmbeddings()
                ? Ops.linear(h, model().embedTokens().weight(), null)   // [B, T, H] · [V, H]ᵀ
                : child("lm_head", UnaryModule.class).forward(h);
    }

    @Override
    protected String positionLimitName() {
        return config.slidingWindow() != null && config.slidingWindow() < config.maxPositionEmbeddings()
                ? "sliding_window; sliding-window attention is not implemented" : "max_position_embeddings";
    }

    @Override
    public ObjectNode configJson() {
        return config.toJson(sourceConfig);
    }
}
