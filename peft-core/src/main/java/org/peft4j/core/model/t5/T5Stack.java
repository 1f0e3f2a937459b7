package org.peft4j.core.model.t5;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.Backbone;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.model.BackboneOutput;
import org.peft4j.core.model.generate.Seq2SeqLM;
import org.peft4j.core.nn.EmbeddingLayer;
import org.peft4j.core.nn.KVCache;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.ModuleList;
import org.peft4j.core.nn.RMSNorm;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.AttentionMask;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;

/**
 * A T5 stack (HF {@code T5Stack}), the encoder or the decoder: {@code block.N} and
 * {@code final_layer_norm}; the token embedding is the model's {@code shared} table (not a child
 * here, so it has one name). The relative position bias is computed once per forward from layer
 * 0's table and added in every layer's self-attention: bidirectional buckets in the encoder,
 * unidirectional (keys at or before the query) in the decoder, query positions counted from the
 * prefix + cache length.
 *
 * <p>As a {@link Backbone} the encoder runs on {@link BackboneInputs} alone (virtual tokens of
 * prompt tuning go in front of its input). The decoder also needs the encoder's output:
 * {@link #forward(BackboneInputs, Seq2SeqLM.Encoded, Tensor[][])}; a self-attention prefix (prefix
 * tuning) comes in the inputs, a cross-attention prefix with the encoder output, and is put in
 * front of the encoder's keys/values (always visible).
 */
public final class T5Stack extends Module implements Backbone {
    private final T5Config config;
    private final boolean decoder;
    private final Supplier<EmbeddingLayer> embedding;
    private final Rng dropout;

    T5Stack(T5Config c, boolean decoder, Supplier<EmbeddingLayer> embedding, Rng init, Rng dropout) {
        this.config = c;
        this.decoder = decoder;
        this.embedding = embedding;
        this.dropout = dropout;
        int n = decoder ? c.numDecoderLayers() : c.numLayers();
        List<T5Block> blocks = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            blocks.add(new T5Block(c, decoder, i, init, dropout));
        }
        registerModule("block", new ModuleList(blocks));
        registerModule("final_layer_norm", new RMSNorm(c.dModel(), c.layerNormEpsilon()));
    }

    public T5Block block(int i) {
        return child("block", ModuleList.class).get(i, T5Block.class);
    }

    public boolean isDecoder() {
        return decoder;
    }

    @Override
    public Tensor embed(INDArray ids) {
        return embedding.get().forward(ids);
    }

    /** The encoder on its inputs; for the decoder stack this is an error (it needs the encoder output). */
    @Override
    public BackboneOutput forward(BackboneInputs inputs) {
        if (decoder) {
            throw new IllegalStateException("the T5 decoder stack needs the encoder output:"
                    + " use forward(inputs, encoderHidden, encoderMask, crossCache) or T5ForConditionalGeneration");
        }
        return run(inputs, null, null, null, null, null);
    }

    /**
     * The decoder on its inputs, attending to the encoder output {@code enc} (hidden states
     * {@code [B, S, d_model]}, padding mask {@code [B, S]} or null, optional cross-attention
     * prefixes). {@code crossCache} (one entry per layer, filled on first use) keeps each layer's
     * cross-attention keys/values so generation computes them once; null computes them every call.
     */
    public BackboneOutput forward(BackboneInputs inputs, Seq2SeqLM.Encoded enc, Tensor[][] crossCache) {
        Tensor encoderHidden = enc.hidden();
        INDArray encoderMask = enc.mask();
        if (!decoder) {
            throw new IllegalStateException("the T5 encoder stack has no cross-attention");
        }
        if (encoderHidden == null || encoderHidden.rank() != 3 || encoderHidden.size(0) != inputs.batchSize()
                || encoderHidden.size(2) != config.dModel()) {
            throw new IllegalArgumentException("encoder hidden states must be [" + inputs.batchSize() + ", S, " + config.dModel()
                    + "], got " + (encoderHidden == null ? "null" : Arrays.toString(encoderHidden.shape())));
        }
        if (encoderMask != null && (encoderMask.rank() != 2 || encoderMask.size(0) != encoderHidden.size(0)
                || encoderMask.size(1) != encoderHidden.size(1))) {
            throw new IllegalArgumentException("encoder attention mask must be [" + encoderHidden.size(0) + ", "
                    + encoderHidden.size(1) + "], got " + Arrays.toString(encoderMask.shape()));
        }
        if (crossCache != null && crossCache.length != numLayers()) {
            throw new IllegalArgumentException("expected " + numLayers() + " cross-attention cache entries, got " + crossCache.length);
        }
        Tensor[] ck = enc.crossPrefixKeys();
        Tensor[] cv = enc.crossPrefixValues();
        if ((ck == null) != (cv == null) || (ck != null && (ck.length != numLayers() || cv.length != numLayers()))) {
            throw new IllegalArgumentException("cross-attention prefix keys/values must both be given, one per decoder layer ("
                    + numLayers() + ")");
        }
        return run(inputs, encoderHidden, encoderMask, crossCache, ck, cv);
    }

    private BackboneOutput run(BackboneInputs inputs, Tensor encoderHidden, INDArray encoderMask, Tensor[][] crossCache,
                               Tensor[] crossPrefixK, Tensor[] crossPrefixV) {
        inputs.check(this);
        int t = (int) inputs.seqLength();
        int p = (int) inputs.prefixLength();
        int past = (int) inputs.pastLength();
        Tensor x = T5Block.dropout(this, inputs.inputEmbeddings(), config.dropoutRate(), dropout);
        Tensor bias = block(0).selfAttentionLayer().attention().positionBias(t, p + past + t, p + past);
        AttentionMask selfMask = (decoder ? AttentionMask.causal(past) : AttentionMask.bidirectional())
                .withPrefix(p).withKeyPadding(inputs.attentionMask());
        long crossP = crossPrefixK == null || crossPrefixK[0] == null ? 0 : crossPrefixK[0].size(2);
        AttentionMask crossMask = encoderHidden == null ? null
                : AttentionMask.bidirectional().withPrefix(crossP).withKeyPadding(encoderMask);
        Pass pass = new Pass(bias, selfMask, inputs.caches(), inputs.prefixKeys(), inputs.prefixValues(), encoderHidden,
                crossMask, crossCache, crossPrefixK, crossPrefixV);
        List<Tensor> hidden = inputs.outputHiddenStates() ? new ArrayList<>() : null;
        for (int i = 0; i < numLayers(); i++) {
            if (hidden != null) {
                hidden.add(x);
            }
            x = block(i).forward(x, pass);
        }
        x = child("final_layer_norm", UnaryModule.class).forward(x);
        x = T5Block.dropout(this, x, config.dropoutRate(), dropout);
        if (hidden != null) {
            hidden.add(x);
        }
        return new BackboneOutput(x, hidden, null);
    }

    /** What every block of one forward pass reads. */
    static final class Pass {
        private final Tensor bias;
        private final AttentionMask selfMask;
        private final KVCache[] caches;
        private final Tensor[] prefixKeys;
        private final Tensor[] prefixValues;
        private final Tensor encoderHidden;
        private final AttentionMask crossMask;
        private final Tensor[][] crossCache;
        private final Tensor[] crossPrefixK;
        private final Tensor[] crossPrefixV;

        Pass(Tensor bias, AttentionMask selfMask, KVCache[] caches, Tensor[] prefixKeys, Tensor[] prefixValues,
             Tensor encoderHidden, AttentionMask crossMask, Tensor[][] crossCache, Tensor[] crossPrefixK, Tensor[] crossPrefixV) {
            this.crossPrefixK = crossPrefixK;
            this.crossPrefixV = crossPrefixV;
            this.bias = bias;
            this.selfMask = selfMask;
            this.caches = caches;
            this.prefixKeys = prefixKeys;
            this.prefixValues = prefixValues;
            this.encoderHidden = encoderHidden;
            this.crossMask = crossMask;
            this.crossCache = crossCache;
        }

        Tensor bias() {
            return bias;
        }

        AttentionMask selfMask() {
            return selfMask;
        }

        AttentionMask crossMask() {
            return crossMask;
        }

        KVCache cache(int layer) {
            return caches == null ? null : caches[layer];
        }

        Tensor prefixKeys(int layer) {
            return prefixKeys == null ? null : prefixKeys[layer];
        }

        Tensor prefixValues(int layer) {
            return prefixValues == null ? null : prefixValues[layer];
        }

        /** Layer {@code layer}'s cross-attention keys and values of the encoder output (cached when a cache is given). */
        Tensor[] crossKeysValues(int layer, T5Attention attention) {
            if (crossCache != null && crossCache[layer] != null) {
                return crossCache[layer];
            }
            Tensor[] kv = attention.keysValues(encoderHidden);
            if (crossPrefixK != null && crossPrefixK[layer] != null) {
                kv = new Tensor[]{org.peft4j.core.tensor.Ops.concat(2, crossPrefixK[layer], kv[0]),
                        org.peft4j.core.tensor.Ops.concat(2, crossPrefixV[layer], kv[1])};
            }
            if (crossCache != null) {
                crossCache[layer] = kv;
            }
            return kv;
        }
    }

    public T5Config config() {
        return config;
    }

    @Override
    public int hiddenSize() {
        return config.dModel();
    }

    @Override
    public int numLayers() {
        return decoder ? config.numDecoderLayers() : config.numLayers();
    }

    @Override
    public int numAttentionHeads() {
        return config.numHeads();
    }

    @Override
    public int numKeyValueHeads() {
        return config.numHeads();
    }

    @Override
    public int headDim() {
        return config.dKv();
    }

    /** {@code n_positions} when the config has it, else no limit (relative positions need no table). */
    @Override
    public int maxPositions() {
        return config.maxPositions();
    }

    @Override
    public int vocabSize() {
        return config.vocabSize();
    }

    @Override
    public boolean isCausal() {
        return decoder;
    }
}
