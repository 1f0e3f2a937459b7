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
 * Prompt tuning ({@code PROMPT_TUNING}): {@code n} learned vectors in front of the input embeddings.
 * Virtual tokens take positions 0..n-1, real tokens n..n+T-1; the attention mask gets n ones in
 * front and BERT's token types n zeros. A causal LM's logits cover all n + T positions (as PEFT's);
 * the caller's labels get n × -100 in front ({@code CausalLm} does this for the loss).
 * With KV caches the virtual tokens are fed once, on the first call (empty caches); later calls
 * only extend the mask by the n cached virtual tokens.
 */
public class PromptTuningMethod extends PromptLearningMethod {
    @Override
    public String peftType() {
        return "PROMPT_TUNING";
    }

    @Override
    public Class<? extends PeftConfig> configClass() {
        return PromptTuningConfig.class;
    }

    @Override
    protected int outputDim(PromptLearningConfig config, Backbone backbone) {
        return backbone.hiddenSize();
    }

    @Override
    protected PromptSource newSource(PromptLearningConfig config, Backbone b, EmbeddingLayer words, Rng rng) {
        PromptTuningConfig c = (PromptTuningConfig) config;
        int n = c.totalVirtualTokens();
        INDArray w = words.weight().value();
        switch (c.init()) {
            case TEXT: {
                int[] ids = c.initTextTokenIds();
                if (ids == null || ids.length == 0) {
                    throw new IllegalArgumentException("prompt_tuning_init TEXT needs the token ids of prompt_tuning_init_text '"
                            + c.initText() + "' (PromptTuningConfig.setInitText(text, ids))");
                }
                // PEFT: cut to n, or repeat ceil(n / len) times and cut
                long[] rows = new long[n];
                for (int i = 0; i < n; i++) {
                    rows[i] = ids[i % ids.length];
                }
                return new PromptSource.Table(rowsOf(w, rows, b.vocabSize(), "prompt_tuning_init_text"));
            }
            case SAMPLE_VOCAB: {
                long[] rows = new long[n];
                for (int i = 0; i < n; i++) {
                    rows[i] = rng.nextInt(b.vocabSize());
                }
                return new PromptSource.Table(rowsOf(w, rows, b.vocabSize(), "SAMPLE_VOCAB"));
            }
            default:
                return new PromptSource.Table(PromptSource.normal(rng, n, b.hiddenSize()));
        }
    }

    private static INDArray rowsOf(INDArray w, long[] rows, int vocab, String what) {
        for (long r : rows) {
            if (r < 0 || r >= vocab) {
                throw new IllegalArgumentException(what + ": token id " + r + " outside the vocabulary [0, " + vocab + ")");
            }
        }
        return w.getRows(java.util.Arrays.stream(rows).mapToInt(x -> (int) x).toArray()).castTo(org.nd4j.linalg.api.buffer.DataType.FLOAT).dup();
    }

    @Override
    public long virtualTokensInCache(PeftConfig config, long cachedTokens) {
        return cachedTokens > 0 ? ((PromptLearningConfig) config).numVirtualTokens() : 0;
    }

    @Override
    public BackboneInputs prepareInputs(Module model, PeftConfig config, String adapterName, Backbone backbone,
                                        BackboneInputs inputs) {
        // the first num_virtual_tokens rows; with num_transformer_submodules 2 (encoder-decoder) PEFT's
        // table has twice as many and PeftModelForSeq2SeqLM puts only these in front of the encoder input
        int n = ((PromptLearningConfig) config).numVirtualTokens();
        long past = inputs.pastLength();
        long t = inputs.seqLength();
        INDArray mask = inputs.attentionMask();
        if (past > 0) {
            // decoding: the soft prompt is in the caches already; the caller's mask does not count it
            checkPositions(backbone, 0, past, t);
            if (mask != null && mask.size(1) == past - n + t) {
                return inputs.withAttentionMask(prependColumns(mask, n, 1));
            }
            return inputs;
        }
        checkPositions(backbone, n, 0, t);
        Tensor prompts = promptOutput(model, adapterName);   // [n·submodules, hidden]
        if (prompts.size(0) != n) {
            prompts = Ops.slice(prompts, 0, 0, n);
        }
        Tensor embeds = Ops.concat(1, repeatBatch(prompts, inputs.batchSize()), inputs.inputEmbeddings());   // [B, n+T, hidden]
        BackboneInputs out = inputs.withInputEmbeddings(embeds);
        if (mask != null) {
            out = out.withAttentionMask(prependColumns(mask, n, 1));
        }
        if (inputs.tokenTypeIds() != null) {
            out = out.withTokenTypeIds(prependColumns(inputs.tokenTypeIds(), n, 0));
        }
        return out;
    }
}
