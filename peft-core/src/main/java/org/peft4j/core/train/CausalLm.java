package org.peft4j.core.train;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Causal language modelling as a training task: the next-token loss over shifted labels, its
 * evaluation (mean loss per predicted token and perplexity), and examples from raw texts.
 *
 * <p>Labels are given unshifted, as Hugging Face's {@code *ForCausalLM} takes them: position
 * {@code t} of the logits predicts label {@code t + 1}; labels equal to
 * {@link Batch#IGNORE_INDEX} (-100, e.g. padding) are skipped.
 */
public final class CausalLm {
    private CausalLm() {
    }

    /**
     * Mean next-token cross-entropy: {@code logits [B, T, V]} at positions {@code 0..T-2}
     * against {@code labels [B, T]} at {@code 1..T-1}, over the labels that are not -100
     * (0 with a zero gradient when every one is).
     *
     * @throws IllegalArgumentException if the shapes are not {@code [B, T, V]} and {@code [B, T]} with T ≥ 2
     */
    public static Tensor shiftedLoss(Tensor logits, INDArray labels) {
        if (logits == null || labels == null) {
            throw new IllegalArgumentException("causal LM loss needs logits and labels");
        }
        long[] ls = logits.shape();
        if (ls.length != 3 || labels.rank() != 2 || labels.size(0) != ls[0] || labels.size(1) != ls[1]) {
            throw new IllegalArgumentException("causal LM loss needs logits [batch, seq, vocab] and labels [batch, seq], got "
                    + Arrays.toString(ls) + " and " + Arrays.toString(labels.shape()));
        }
        long t = ls[1];
        if (t < 2) {
            throw new IllegalArgumentException("causal LM loss needs sequences of at least 2 tokens, got length " + t);
        }
        Tensor shifted = Ops.slice(logits, 1, 0, t - 1);                                        // [B, T-1, V]
        INDArray targets = labels.get(NDArrayIndex.all(), NDArrayIndex.interval(1, t)).dup();   // [B, T-1]
        return Ops.crossEntropy(shifted, targets, Ops.Reduction.MEAN);
    }

    /**
     * {@link #shiftedLoss} for logits {@code [B, n + T, V]} with {@code n} virtual tokens of a prompt
     * method in front of labels {@code [B, T]}: the labels get n × -100 in front, as PEFT's prompt
     * learning does, so the last virtual token's logits predict the first real token.
     */
    public static Tensor shiftedLoss(Tensor logits, INDArray labels, long virtualTokens) {
        if (virtualTokens < 0) {
            throw new IllegalArgumentException("virtual tokens must be >= 0, got " + virtualTokens);
        }
        if (virtualTokens == 0 || labels == null || labels.rank() != 2) {
            return shiftedLoss(logits, labels);
        }
        INDArray front = Nd4j.valueArrayOf(new long[]{labels.size(0), virtualTokens}, -100L, labels.dataType());
        return shiftedLoss(logits, Nd4j.concat(1, front, labels));
    }

    /** {@link #shiftedLoss}, counting positions of the logits beyond the labels as virtual tokens in front. */
    private static Tensor virtualAwareLoss(Tensor logits, INDArray labels) {
        long extra = logits != null && labels != null && logits.rank() == 3 && labels.rank() == 2
                ? logits.size(1) - labels.size(1) : 0;
        return extra > 0 ? shiftedLoss(logits, labels, extra) : shiftedLoss(logits, labels);
    }

    /** The tokens {@link #shiftedLoss} averages over: labels {@code [B, T]} at {@code 1..T-1} that are not -100. */
    public static long countTargets(INDArray labels) {
        if (labels == null || labels.rank() != 2) {
            throw new IllegalArgumentException("labels must be [batch, seq], got "
                    + (labels == null ? "null" : Arrays.toString(labels.shape())));
        }
        if (labels.size(1) < 2) {
            return 0;
        }
        return labels.get(NDArrayIndex.all(), NDArrayIndex.interval(1, labels.size(1))).neq(Batch.IGNORE_INDEX)
                .castTo(DataType.INT64).sumNumber().longValue();
    }

    /** {@code exp(mean negative log-likelihood per token)}: V for a uniform guess over V tokens, 1 for a certain one. */
    public static double perplexity(double meanNll) {
        return Math.exp(meanNll);
    }

    /** The training loss: {@link #shiftedLoss} of {@code logits} on the batch's labels. */
    public static LossFunction loss(LogitsFunction logits) {
        if (logits == null) {
            throw new IllegalArgumentException("causal LM loss needs a logits function");
        }
        return (model, b) -> virtualAwareLoss(logits.logits(model, b), b.labels());
    }

    /**
     * {@code eval_loss}, the mean loss per predicted token over every batch (each batch's mean
     * weighted by its {@link #countTargets}), and {@code perplexity}; both NaN when no token
     * is predicted.
     */
    public static EvalFunction evaluation(LogitsFunction logits) {
        if (logits == null) {
            throw new IllegalArgumentException("causal LM evaluation needs a logits function");
        }
        return (model, batches) -> {
            double sum = 0;
            long n = 0;
            for (Batch b : batches) {
                long count = countTargets(b.labels());
                sum += virtualAwareLoss(logits.logits(model, b), b.labels()).item() * count;
                n += count;
            }
            Map<String, Double> m = new LinkedHashMap<>();
            m.put("eval_loss", n == 0 ? Double.NaN : sum / n);
            m.put("perplexity", n == 0 ? Double.NaN : perplexity(sum / n));
            return m;
        };
    }

    /**
     * One example per text (its tokens, at most {@code maxLength}, labels = ids); texts of fewer
     * than 2 tokens predict nothing and are left out.
     *
     * @throws IllegalArgumentException when no text has 2 tokens ({@code source} names the data in the message)
     */
    public static List<TokenExample> examples(List<String> texts, Tokenizer tokenizer, int maxLength, String source) {
        if (maxLength <= 0) {
            throw new IllegalArgumentException("causal LM examples need a positive maximum length, got " + maxLength);
        }
        List<TokenExample> out = new ArrayList<>();
        for (String t : texts) {
            int[] ids = tokenizer.encode(t, maxLength, true).ids();
            if (ids.length >= 2) {
                out.add(TokenExample.causalLm(ids));
            }
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException("data file " + source + " has no text of at least 2 tokens");
        }
        return out;
    }
}
