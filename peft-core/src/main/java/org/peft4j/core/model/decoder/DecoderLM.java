package org.peft4j.core.model.decoder;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.model.Backbone;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.model.BackboneOutput;
import org.peft4j.core.model.HeadModel;
import org.peft4j.core.model.HeadOutput;
import org.peft4j.core.model.WeightSource;
import org.peft4j.core.nn.KVCache;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Function;

/**
 * Shared plumbing of the decoder families: the forwards (a {@link Backbone} plus the LM head
 * {@link #logits}), filling parameters from a {@link WeightSource}, and saving to a Hugging Face folder.
 */
public abstract class DecoderLM extends Module implements CausalLM, HeadModel {

    /**
     * The full forward.
     *
     * @param inputIds      {@code [B, T]} integer token ids
     * @param attentionMask {@code [B, past + T]} 1 = real token, 0 = pad (null = no padding)
     * @param caches        per-layer caches to append to (null = none)
     * @param hiddenStates  also return every layer's hidden states
     */
    public DecoderOutput forward(INDArray inputIds, INDArray attentionMask, KVCache[] caches, boolean hiddenStates) {
        if (caches != null && caches.length != numLayers()) {
            throw new IllegalArgumentException("expected " + numLayers() + " layer caches, got " + caches.length);
        }
        int past = caches == null ? 0 : (int) caches[0].length();
        INDArray mask = DecoderInputs.check(inputIds, attentionMask, past, vocabSize(), maxPositions(), positionLimitName());
        Backbone b = backbone();
        BackboneOutput o = b.forward(BackboneInputs.of(b.embed(inputIds), mask).withCaches(caches).withHiddenStates(hiddenStates));
        return new DecoderOutput(logits(o.lastHiddenState()), o.hiddenStates());
    }

    /**
     * Logits {@code [B, T, vocab]} through the backbone interface: input embeddings (possibly
     * with virtual tokens), a per-layer key/value prefix, caches, and hidden states / attentions
     * on request (see {@link BackboneInputs}).
     */
    @Override
    public HeadOutput forward(BackboneInputs inputs) {
        BackboneOutput o = backbone().forward(inputs);
        return new HeadOutput(logits(o.lastHiddenState()), o);
    }

    /** The decoder stack under the LM head. */
    @Override
    public abstract Backbone backbone();

    /** The LM head: {@code [B, T, hidden]} final hidden states → logits {@code [B, T, vocab]}. */
    protected abstract Tensor logits(Tensor hidden);

    /** The config field {@link #maxPositions()} comes from, for error messages. */
    protected abstract String positionLimitName();

    @Override
    public Tensor forward(INDArray inputIds, INDArray attentionMask, KVCache[] caches) {
        return forward(inputIds, attentionMask, caches, false).logits();
    }

    /** Logits {@code [B, T, vocab]} of a whole (possibly padded) batch, no cache. */
    public Tensor forward(INDArray inputIds, INDArray attentionMask) {
        return forward(inputIds, attentionMask, null, false).logits();
    }

    /** The HF {@code config.json} content of this model. */
    public abstract ObjectNode configJson();

    /**
     * Writes {@code config.json} and {@code model.safetensors} (sharded above 5 GB) into
     * {@code dir} with Hugging Face key names; each file is written atomically. A tied output
     * head is not written (it is the embedding), as transformers does.
     */
    public void save(Path dir) throws IOException {
        save(dir, HfFolder.DEFAULT_MAX_SHARD_BYTES);
    }

    /** As {@link #save(Path)}, splitting the weights into shards of at most {@code maxShardBytes} plus an index. */
    public void save(Path dir, long maxShardBytes) throws IOException {
        Map<String, INDArray> state = stateDict();
        HfFolder.writeWeights(dir, state, maxShardBytes);
        HfFolder.writeConfig(dir, configJson());
    }

    /**
     * Replaces every parameter's value by the source's value for its full name.
     *
     * @param initOf how a fresh parameter of that name is initialised
     * @param stdOf  the normal init's std for that name
     */
    protected void fill(WeightSource source, Function<String, WeightSource.Init> initOf, Function<String, Double> stdOf) {
        for (Map.Entry<String, Parameter> e : namedParameters().entrySet()) {
            String name = e.getKey();
            Parameter p = e.getValue();
            p.setValue(source.get(name, p.shape(), initOf.apply(name), stdOf.apply(name)));
        }
    }
}
