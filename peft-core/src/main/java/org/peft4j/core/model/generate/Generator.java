package org.peft4j.core.model.generate;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.model.decoder.CausalLM;
import org.peft4j.core.nn.KVCache;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Arrays;

/**
 * Autoregressive text generation for a {@link CausalLM}, batched over prompts of different
 * lengths. Prompts are left-padded (as Hugging Face does for generation) so every row's next
 * token comes from the last column; positions follow the attention mask.
 *
 * <p>With the KV cache (the default) the prompt runs once and then each step feeds only the
 * new token per row, reusing every layer's cached keys and values. Without it every step
 * recomputes the whole sequence, which is slower but independent of the cache code; both give
 * the same tokens. Everything runs under {@link NoGrad}.
 */
public final class Generator {
    private static final Logger LOG = LoggerFactory.getLogger(Generator.class);

    private final CausalLM model;

    public Generator(CausalLM model) {
        if (model == null) {
            throw new IllegalArgumentException("model must not be null");
        }
        this.model = model;
    }

    /** Generates for ragged prompts (each a non-empty array of token ids), with the KV cache. */
    public GenerationResult generate(int[][] prompts, GenerationConfig cfg) {
        return generate(prompts, cfg, true);
    }

    public GenerationResult generate(int[][] prompts, GenerationConfig cfg, boolean useCache) {
        if (prompts == null || prompts.length == 0) {
            throw new IllegalArgumentException("no prompts given");
        }
        int p = 0;
        for (int b = 0; b < prompts.length; b++) {
            if (prompts[b] == null || prompts[b].length == 0) {
                throw new IllegalArgumentException("prompt " + b + " is empty");
            }
            p = Math.max(p, prompts[b].length);
        }
        // left padding: row b's tokens occupy the last prompts[b].length columns
        INDArray ids = Nd4j.valueArrayOf(new long[]{prompts.length, p}, (long) cfg.padTokenId(), DataType.INT64);
        INDArray mask = Nd4j.zeros(DataType.INT64, prompts.length, p);
        for (int b = 0; b < prompts.length; b++) {
            int off = p - prompts[b].length;
            for (int t = 0; t < prompts[b].length; t++) {
                ids.putScalar(b, off + t, prompts[b][t]);
                mask.putScalar(b, off + t, 1);
            }
        }
        return generate(ids, mask, cfg, useCache);
    }

    /**
     * Generates from a left-padded batch {@code inputIds [B, P]} with {@code attentionMask [B, P]}
     * (null = no padding). A mask with a pad after a real token (right padding) is rejected, as
     * the next token of such a row would not be in the last column.
     */
    public GenerationResult generate(INDArray inputIds, INDArray attentionMask, GenerationConfig cfg, boolean useCache) {
        if (cfg == null) {
            throw new IllegalArgumentException("generation config must not be null");
        }
        if (inputIds == null || inputIds.rank() != 2 || inputIds.size(1) == 0) {
            throw new IllegalArgumentException("inputIds must be [batch, seq] with seq > 0, found "
                    + (inputIds == null ? "null" : Arrays.toString(inputIds.shape())));
        }
        int batch = (int) inputIds.size(0);
        int p = (int) inputIds.size(1);
        INDArray mask = attentionMask == null ? Nd4j.ones(DataType.INT64, batch, p) : attentionMask.castTo(DataType.INT64);
        if (!Arrays.equals(mask.shape(), inputIds.shape())) {
            throw new IllegalArgumentException("attentionMask " + Arrays.toString(mask.shape()) + " does not match inputIds "
                    + Arrays.toString(inputIds.shape()));
        }
        int vocab = model.vocabSize();
        int[][] history = new int[batch][p + cfg.maxNewTokens()];
        int[] historyLen = new int[batch];
        for (int b = 0; b < batch; b++) {
            boolean seenReal = false;
            for (int t = 0; t < p; t++) {
                long m = mask.getLong(b, t);
                long id = inputIds.getLong(b, t);
                if (m != 0 && m != 1) {
                    throw new IllegalArgumentException("attentionMask must hold 0/1, found " + m + " at [" + b + ", " + t + "]");
                }
                if (m == 1) {
                    if (id < 0 || id >= vocab) {
                        throw new IllegalArgumentException("token id " + id + " at [" + b + ", " + t
                                + "] outside the vocabulary [0, " + vocab + ")");
                    }
                    history[b][historyLen[b]++] = (int) id;
                    seenReal = true;
                } else if (seenReal) {
                    throw new IllegalArgumentException("prompt row " + b + " is not left-padded (pad at column " + t
                            + " after a real token); generation needs left padding");
                }
            }
            if (!seenReal) {
                throw new IllegalArgumentException("prompt row " + b + " has no real token");
            }
        }
        int fed = p + Math.max(0, cfg.maxNewTokens() - 1);
        if (fed > model.maxPositions()) {
            throw new IllegalArgumentException("prompt length " + p + " + maxNewTokens " + cfg.maxNewTokens()
                    + " needs " + fed + " positions, more than the model's limit " + model.maxPositions());
        }

        int[][] out = new int[batch][cfg.maxNewTokens()];
        int[] outLen = new int[batch];
        boolean[] stopped = new boolean[batch];
        Rng rng = new Rng(cfg.seed());
        INDArray allIds = inputIds.castTo(DataType.INT64);
        INDArray allMask = mask;
        INDArray stepIds = allIds;
        try (NoGrad ignored = NoGrad.enter()) {
            KVCache[] cache = useCache ? model.newCaches() : null;
            for (int step = 0; step < cfg.maxNewTokens(); step++) {
                Tensor logits = useCache ? model.forward(stepIds, allMask, cache) : model.forward(allIds, allMask, null);
                long t = logits.size(1);
                // [B, vocab] logits of the last column
                INDArray last = logits.value().get(NDArrayIndex.all(), NDArrayIndex.point(t - 1), NDArrayIndex.all());
                INDArray next = Nd4j.createUninitialized(DataType.INT64, batch, 1);
                boolean allStopped = true;
                for (int b = 0; b < batch; b++) {
                    int tok;
                    if (stopped[b]) {
                        tok = cfg.padTokenId();
                    } else {
                        float[] row = last.getRow(b).dup().toFloatVector();
                        tok = LogitsProcessing.select(row, history[b], historyLen[b], cfg, rng);
                        out[b][outLen[b]++] = tok;
                        history[b][historyLen[b]++] = tok;
                        stopped[b] = cfg.stopTokenIds().contains(tok);
                    }
                    allStopped &= stopped[b];
                    next.putScalar(b, 0, tok);
                }
                if (allStopped || step == cfg.maxNewTokens() - 1) {
                    break;
                }
                allIds = Nd4j.concat(1, allIds, next);
                allMask = Nd4j.concat(1, allMask, Nd4j.ones(DataType.INT64, batch, 1));
                stepIds = next;
            }
        }
        int[][] tokens = new int[batch][];
        for (int b = 0; b < batch; b++) {
            tokens[b] = Arrays.copyOf(out[b], outLen[b]);
        }
        GenerationResult r = new GenerationResult(tokens, stopped);
        LOG.debug("generated {} (cache={})", r, useCache);
        return r;
    }
}
