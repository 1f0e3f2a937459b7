package org.peft4j.prompt;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.Backbone;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.nn.EmbeddingLayer;
import org.peft4j.core.nn.Module;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

/**
 * Prefix tuning ({@code PREFIX_TUNING}): a learned key/value prefix in every attention layer.
 * The tensor {@code [n, numLayers·2·tokenDim]} is laid out {@code [layer][key, value][kvHead][headDim]}
 * along its last axis (PEFT's view + permute), {@code tokenDim = headDim·numKeyValueHeads}; each
 * layer's prefix is used as if already in the KV cache (no rotary), the real tokens take
 * positions n..n+T-1 and the attention mask gets n ones in front.
 */
public final class PrefixTuningMethod extends PromptLearningMethod {
    @Override
    public String peftType() {
        return "PREFIX_TUNING";
    }

    @Override
    public Class<? extends PeftConfig> configClass() {
        return PrefixTuningConfig.class;
    }

    @Override
    protected int tokenDim(Backbone b) {
        return b.headDim() * b.numKeyValueHeads();
    }

    @Override
    protected int attentionHeads(Backbone b) {
        return b.numKeyValueHeads();
    }

    /** PEFT's prefix encoder has num_virtual_tokens rows, whatever num_transformer_submodules says. */
    @Override
    protected int sourceRows(PromptLearningConfig c) {
        return c.numVirtualTokens();
    }

    @Override
    protected int outputDim(PromptLearningConfig config, Backbone b) {
        return b.numLayers() * 2 * tokenDim(b);
    }

    @Override
    protected void fillDefaults(PromptLearningConfig config, Backbone b) {
        PrefixTuningConfig c = (PrefixTuningConfig) config;
        if (c.encoderHiddenSize() == null) {
            c.setEncoderHiddenSize(tokenDim(b));
        }
    }

    @Override
    protected PromptSource newSource(PromptLearningConfig config, Backbone b, EmbeddingLayer words, Rng rng) {
        PrefixTuningConfig c = (PrefixTuningConfig) config;
        int n = sourceRows(c);
        if (c.prefixProjection()) {
            int h = c.encoderHiddenSize() == null ? tokenDim(b) : c.encoderHiddenSize();
            return new PromptSource.PrefixProjection(n, tokenDim(b), h, outputDim(c, b), rng);
        }
        return new PromptSource.Table(PromptSource.normal(rng, n, outputDim(c, b)));
    }

    @Override
    public BackboneInputs prepareInputs(Module model, PeftConfig config, String adapterName, Backbone b,
                                        BackboneInputs inputs) {
        int n = ((PromptLearningConfig) config).numVirtualTokens();
        long past = inputs.pastLength();
        long t = inputs.seqLength();
        checkPositions(b, n, past, t);
        Tensor all = promptOutput(model, adapterName);   // [n, L·2·tokenDim]
        long batch = inputs.batchSize();
        int layers = b.numLayers();
        int kv = b.numKeyValueHeads();
        int hd = b.headDim();
        long td = (long) kv * hd;
        Tensor[] keys = new Tensor[layers];
        Tensor[] values = new Tensor[layers];
        for (int l = 0; l < layers; l++) {
            keys[l] = headsFirst(Ops.slice(all, 1, 2L * l * td, (2L * l + 1) * td), batch, n, kv, hd);
            values[l] = headsFirst(Ops.slice(all, 1, (2L * l + 1) * td, (2L * l + 2) * td), batch, n, kv, hd);
        }
        BackboneInputs out = inputs.withPrefix(keys, values);
        INDArray mask = inputs.attentionMask();
        if (mask != null && mask.size(1) == past + t) {
            out = out.withAttentionMask(prependColumns(mask, n, 1));
        }
        return out;
    }

    /** {@code [n, kv·hd]} → {@code [batch, kv, n, hd]}. */
    private static Tensor headsFirst(Tensor x, long batch, long n, int kv, int hd) {
        Tensor h = Ops.permute(Ops.reshape(x, n, kv, hd), 1, 0, 2);   // [kv, n, hd]
        Tensor one = Ops.reshape(h, 1, kv, n, hd);
        if (batch == 1) {
            return one;
        }
        Tensor[] parts = new Tensor[(int) batch];
        java.util.Arrays.fill(parts, one);
        return Ops.concat(0, parts);
    }
}
