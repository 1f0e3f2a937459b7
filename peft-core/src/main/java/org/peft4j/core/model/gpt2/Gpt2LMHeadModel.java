package org.peft4j.core.model.gpt2;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.WeightSource;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;

/**
 * GPT-2 with a language-modelling head (HF {@code GPT2LMHeadModel}). Parameter names are the HF
 * keys: {@code transformer.wte.weight}, {@code transformer.h.0.attn.c_attn.weight}, … With
 * {@code tie_word_embeddings} (the default) the head is the token embedding and there is no
 * {@code lm_head} parameter; otherwise {@code lm_head} is a bias-free {@link Linear}.
 *
 * <p>Load a Hugging Face folder with {@link #load(Path)}; run {@link #forward(INDArray, INDArray)};
 * generate with {@link org.peft4j.core.model.generate.Generator}. A loaded model is in eval mode,
 * as after HF's {@code from_pretrained}; call {@code train()} to enable dropout.
 */
public final class Gpt2LMHeadModel extends DecoderLM {
    /** How GPT-2 is made fresh and loaded (the instance {@link #random} and {@link #load} use). */
    static final Gpt2Family FAMILY = new Gpt2Family();

    private final Gpt2Config config;
    private final ObjectNode sourceConfig;

    Gpt2LMHeadModel(Gpt2Config c, ObjectNode sourceConfig, WeightSource weights, Rng dropout) {
        this.config = c;
        this.sourceConfig = sourceConfig;
        // the constructors' own initial values are immediately replaced by the source's
        Rng scratch = new Rng(0);
        registerModule("transformer", new Gpt2Model(c, scratch, dropout));
        if (!c.tieWordEmbeddings()) {
            registerModule("lm_head", new Linear(c.nEmbd(), c.vocabSize(), false, scratch));
        }
        // HF _init_weights: normal(0, initializer_range), c_proj scaled by 1/sqrt(2 n_layer), LN = (1, 0)
        double std = c.initializerRange();
        double projStd = std / Math.sqrt(2.0 * c.nLayer());
        fill(weights, name -> name.endsWith(".bias") ? WeightSource.Init.ZEROS
                        : name.matches(".*\\.ln_(1|2|f)\\.weight") ? WeightSource.Init.ONES : WeightSource.Init.NORMAL,
                name -> name.endsWith("c_proj.weight") ? projStd : std);
    }

    /** A freshly initialised model (HF's initialisation, seeded), in training mode. */
    public static Gpt2LMHeadModel random(Gpt2Config config, long seed) {
        return FAMILY.random(config, seed);
    }

    /** Loads {@code config.json} and the safetensors weights of a Hugging Face folder (dropout seed 0). */
    public static Gpt2LMHeadModel load(Path dir) throws IOException {
        return load(dir, 0L);
    }

    /**
     * Loads a Hugging Face GPT-2 folder. Keys may carry the {@code transformer.} prefix
     * ({@code GPT2LMHeadModel}) or not ({@code GPT2Model}, e.g. the original hub file); a tied
     * {@code lm_head.weight} in the file is accepted and ignored. Every other key must be used.
     *
     * @throws IllegalArgumentException naming the folder and every missing/unexpected key or
     *         shape mismatch, or the config file and its missing keys
     */
    public static Gpt2LMHeadModel load(Path dir, long dropoutSeed) throws IOException {
        return FAMILY.loadLm(dir, dropoutSeed);
    }

    public Gpt2Config config() {
        return config;
    }

    public Gpt2Model transformer() {
        return child("transformer", Gpt2Model.class);
    }

    @Override
    public int vocabSize() {
        return config.vocabSize();
    }

    @Override
    public int maxPositions() {
        return config.nPositions();
    }

    @Override
    public int numLayers() {
        return config.nLayer();
    }

    @Override
    public Gpt2Model backbone() {
        return transformer();
    }

    @Override
    protected Tensor logits(Tensor h) {
        if (config.tieWordEmbeddings()) {
            Parameter wte = transformer().wte().weight();
            return Ops.linear(h, wte, null);  // [B, T, H] · [V, H]ᵀ
        }
        return child("lm_head", UnaryModule.class).forward(h);
    }

    @Override
    protected String positionLimitName() {
        return "n_positions";
    }

    @Override
    public ObjectNode configJson() {
        return config.toJson(sourceConfig);
    }
}
