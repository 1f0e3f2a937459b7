package org.peft4j.core.model.t5;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.model.BackboneOutput;
import org.peft4j.core.model.HeadModel;
import org.peft4j.core.model.HeadOutput;
import org.peft4j.core.model.InputPreparation;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.model.WeightSource;
import org.peft4j.core.model.generate.Seq2SeqLM;
import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.EmbeddingLayer;
import org.peft4j.core.nn.KVCache;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * T5 / mT5 / FLAN-T5 with its LM head (HF {@code T5ForConditionalGeneration}): {@code shared}
 * token embedding, {@code encoder} and {@code decoder} {@link T5Stack}s, and {@code lm_head}
 * unless {@code tie_word_embeddings} (then the head is {@code shared} and the decoder output is
 * first scaled by {@code d_model^-0.5}, as HF does). Parameter names are the HF keys
 * ({@code encoder.block.0.layer.0.SelfAttention.q.weight}, …).
 */
public final class T5ForConditionalGeneration extends Module implements Seq2SeqLM, HeadModel {
    static final T5Family FAMILY = new T5Family();

    private final T5Config config;
    private final ObjectNode sourceConfig;
    private InputPreparation inputPreparation;

    T5ForConditionalGeneration(T5Config c, ObjectNode sourceConfig, WeightSource weights, Rng dropout) {
        this.config = c;
        this.sourceConfig = sourceConfig;
        Rng scratch = null;   // placeholders (zeros), replaced by the source's values below
        registerModule("shared", new Embedding(c.vocabSize(), c.dModel(), -1, scratch));
        registerModule("encoder", new T5Stack(c, false, this::shared, scratch, dropout));
        registerModule("decoder", new T5Stack(c, true, this::shared, scratch, dropout));
        if (!c.tieWordEmbeddings()) {
            registerModule("lm_head", new Linear(c.dModel(), c.vocabSize(), false, scratch));
        }
        double f = c.initializerFactor();
        int d = c.dModel();
        for (Map.Entry<String, Parameter> e : namedParameters().entrySet()) {
            String name = e.getKey();
            Parameter p = e.getValue();
            WeightSource.Init init = name.endsWith("layer_norm.weight") ? WeightSource.Init.ONES : WeightSource.Init.NORMAL;
            p.setValue(weights.get(name, p.shape(), init, f * initStd(name, d, c)));
        }
    }

    /** HF {@code T5PreTrainedModel._init_weights}'s std (before {@code initializer_factor}). */
    private static double initStd(String name, int d, T5Config c) {
        if (name.equals("shared.weight") || name.equals("lm_head.weight")) {
            return 1.0;
        }
        if (name.endsWith(".q.weight")) {
            return Math.pow((double) d * c.dKv(), -0.5);
        }
        if (name.endsWith(".o.weight")) {
            return Math.pow((double) c.numHeads() * c.dKv(), -0.5);
        }
        if (name.endsWith(".wo.weight")) {
            return Math.pow(c.dFf(), -0.5);
        }
        return Math.pow(d, -0.5);   // k, v, relative_attention_bias, wi, wi_0, wi_1
    }

    /** A freshly initialised model (HF's initialisation from {@code seed}, dropout from a fork), in training mode. */
    public static T5ForConditionalGeneration random(T5Config config, long seed) {
        Rng rng = new Rng(seed);
        T5ForConditionalGeneration m = new T5ForConditionalGeneration(config, null, WeightSource.random(rng), rng.fork());
        m.train();
        return m;
    }

    public static T5ForConditionalGeneration load(Path dir) throws IOException {
        return load(dir, 0L);
    }

    /** Loads a Hugging Face T5 folder strictly (see {@link T5Family}), in eval mode. */
    public static T5ForConditionalGeneration load(Path dir, long dropoutSeed) throws IOException {
        return FAMILY.load(dir, dropoutSeed);
    }

    public T5Config config() {
        return config;
    }

    @Override
    public int vocabSize() {
        return config.vocabSize();
    }

    @Override
    public int maxPositions() {
        return config.maxPositions();
    }

    @Override
    public int decoderStartTokenId() {
        return config.requireDecoderStartTokenId();
    }

    public EmbeddingLayer shared() {
        return child("shared", EmbeddingLayer.class);
    }

    public T5Stack encoder() {
        return child("encoder", T5Stack.class);
    }

    public T5Stack decoder() {
        return child("decoder", T5Stack.class);
    }

    /**
     * One encoder run on ids {@code [B, S]} (mask null = no padding). An installed prompt method
     * ({@link #setInputPreparation}) acts here, as PEFT's {@code PeftModelForSeq2SeqLM} does:
     * prompt tuning and P-tuning put their virtual tokens in front of the encoder input (the mask
     * gets ones for them, so the decoder cross-attends over them too); prefix tuning's per-layer
     * prefix goes to the <b>decoder</b> (PEFT passes it as {@code past_key_values}, which T5's
     * encoder never reads), laid out as PEFT's {@code num_transformer_submodules = 2}: its
     * {@code 2L} key/value entries {@code [k_0, v_0, …, k_{L−1}, v_{L−1}]} are doubled and cut into
     * chunks of four, so decoder layer {@code i} gets layer {@code 2i mod L}'s key/value as its
     * self-attention prefix and layer {@code (2i+1) mod L}'s as its cross-attention prefix.
     */
    @Override
    public Encoded encode(INDArray inputIds, INDArray attentionMask) {
        checkIds("input_ids", inputIds);
        BackboneInputs in = BackboneInputs.of(encoder().embed(inputIds), attentionMask);
        Tensor[] selfK = null;
        Tensor[] selfV = null;
        Tensor[] crossK = null;
        Tensor[] crossV = null;
        if (inputPreparation != null) {
            long s = in.seqLength();
            in = inputPreparation.prepare(encoder(), in);
            if (in.prefixKeys() != null) {
                Tensor[] k = in.prefixKeys();
                Tensor[] v = in.prefixValues();
                int layers = k.length;
                int dl = config.numDecoderLayers();
                if (layers != dl) {
                    throw new IllegalArgumentException("prefix tuning on T5 needs num_layers (" + layers
                            + ") = num_decoder_layers (" + dl + "): PEFT gives the decoder one prefix per encoder layer");
                }
                selfK = new Tensor[dl];
                selfV = new Tensor[dl];
                crossK = new Tensor[dl];
                crossV = new Tensor[dl];
                for (int i = 0; i < dl; i++) {
                    selfK[i] = k[(2 * i) % layers];
                    selfV[i] = v[(2 * i) % layers];
                    crossK[i] = k[(2 * i + 1) % layers];
                    crossV[i] = v[(2 * i + 1) % layers];
                }
                long p = in.prefixLength();
                INDArray m = in.attentionMask();
                if (m != null && m.size(1) == p + s) {
                    m = m.get(NDArrayIndex.all(), NDArrayIndex.interval(p, p + s)).dup();
                }
                in = in.withPrefix(null, null).withAttentionMask(m);
            }
        }
        Tensor hidden = encoder().forward(in).lastHiddenState();
        return new Encoded(hidden, in.attentionMask(), selfK, selfV, crossK, crossV);
    }

    /**
     * Decoder logits {@code [B, T, vocab]} for {@code decoderInputIds [B, T]} over an encoder run.
     * {@code decoderMask} covers cached + new positions (null = none); {@code caches}
     * (self-attention, one per decoder layer) and {@code crossCache} (cross-attention keys/values,
     * filled on first use) are for incremental decoding; null = none.
     */
    @Override
    public Tensor decode(INDArray decoderInputIds, INDArray decoderMask, Encoded encoded, KVCache[] caches,
                         Tensor[][] crossCache) {
        checkIds("decoder_input_ids", decoderInputIds);
        long past = caches == null || caches[0] == null ? 0 : caches[0].length();
        if (past + decoderInputIds.size(1) > config.maxPositions()) {
            throw new IllegalArgumentException("decoder input of " + (past + decoderInputIds.size(1)) + " positions ("
                    + past + " cached) exceeds the model's n_positions " + config.maxPositions());
        }
        BackboneInputs in = BackboneInputs.of(decoder().embed(decoderInputIds), decoderMask).withCaches(caches);
        if (encoded.selfPrefixKeys() != null) {
            in = in.withPrefix(encoded.selfPrefixKeys(), encoded.selfPrefixValues());
        }
        return logits(decoder().forward(in, encoded, crossCache).lastHiddenState());
    }

    /** The full forward: logits {@code [B, T, vocab]} (teacher forcing with {@code decoderInputIds}). */
    public Tensor forward(INDArray inputIds, INDArray attentionMask, INDArray decoderInputIds, INDArray decoderMask) {
        return decode(decoderInputIds, decoderMask, encode(inputIds, attentionMask), null, null);
    }

    /** The encoder, where prompt methods put their virtual tokens. */
    @Override
    public T5Stack backbone() {
        return encoder();
    }

    /**
     * Not available: an encoder-decoder needs decoder inputs; use
     * {@link #forward(INDArray, INDArray, INDArray, INDArray)} or {@link #encode} + {@link #decode}.
     */
    @Override
    public HeadOutput forward(BackboneInputs inputs) {
        throw new UnsupportedOperationException("T5ForConditionalGeneration needs decoder inputs:"
                + " use forward(inputIds, attentionMask, decoderInputIds, decoderMask)");
    }

    @Override
    public void setInputPreparation(InputPreparation preparation) {
        this.inputPreparation = preparation;
    }

    @Override
    public InputPreparation inputPreparation() {
        return inputPreparation;
    }

    @Override
    public boolean isEncoderDecoder() {
        return true;
    }

    /** The decoder's final hidden states → logits (tied: {@code (h · d_model^-0.5) · sharedᵀ}). */
    public Tensor logits(Tensor h) {
        if (config.tieWordEmbeddings()) {
            return Ops.linear(Ops.mul(h, Math.pow(config.dModel(), -0.5)), shared().weight(), null);
        }
        return child("lm_head", UnaryModule.class).forward(h);
    }

    /** Empty self-attention caches, one per decoder layer. */
    @Override
    public KVCache[] newCaches() {
        return org.peft4j.core.nn.AttentionContext.newCaches(config.numDecoderLayers());
    }

    /** An empty cross-attention cache (one slot per decoder layer). */
    @Override
    public Tensor[][] newCrossCache() {
        return new Tensor[config.numDecoderLayers()][];
    }

    /**
     * HF {@code _shift_right}: decoder inputs from labels {@code [B, T]}: the decoder start token,
     * then the labels without their last column, with -100 replaced by {@code pad_token_id}.
     *
     * @throws IllegalArgumentException when the config has no {@code decoder_start_token_id}
     */
    public INDArray shiftRight(INDArray labels) {
        int start = config.requireDecoderStartTokenId();
        long[][] l = labels.castTo(DataType.INT64).toLongMatrix();
        long[][] out = new long[l.length][];
        for (int b = 0; b < l.length; b++) {
            out[b] = new long[l[b].length];
            out[b][0] = start;
            for (int t = 1; t < l[b].length; t++) {
                long v = l[b][t - 1];
                out[b][t] = v == Ops.IGNORE_INDEX ? config.padTokenId() : v;
            }
        }
        return Nd4j.createFromArray(out);
    }

    private void checkIds(String what, INDArray ids) {
        if (ids == null || ids.rank() != 2 || ids.size(1) == 0) {
            throw new IllegalArgumentException(what + " must be a non-empty [batch, seq], got "
                    + (ids == null ? "null" : Arrays.toString(ids.shape())));
        }
        if (ids.size(1) > config.maxPositions()) {
            throw new IllegalArgumentException(what + " has " + ids.size(1) + " positions, more than the model's n_positions "
                    + config.maxPositions());
        }
    }

    /** The HF {@code config.json} content of this model. */
    public ObjectNode configJson() {
        return config.toJson(sourceConfig);
    }

    /** Writes {@code config.json} and {@code model.safetensors} (HF keys, tied head not written), each atomically. */
    public void save(Path dir) throws IOException {
        HfFolder.writeWeights(dir, stateDict(), HfFolder.DEFAULT_MAX_SHARD_BYTES);
        HfFolder.writeConfig(dir, configJson());
    }
}
