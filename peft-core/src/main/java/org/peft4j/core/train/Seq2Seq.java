package org.peft4j.core.train;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Sequence-to-sequence training with teacher forcing (PEFT's {@code SEQ_2_SEQ_LM}): examples of
 * source and target token ids, a collator that pads sources on the right with the pad id (mask 0)
 * and targets with -100 (Hugging Face's {@code DataCollatorForSeq2Seq}), and the token
 * cross-entropy of the decoder logits against those labels. The model's logits function builds
 * the decoder input from the labels itself (T5: {@code shift_right}, start token first, -100 →
 * pad).
 */
public final class Seq2Seq {
    private Seq2Seq() {
    }

    /** One pair: source ids (encoder input) and target ids (labels, the tokenizer's end token included). */
    public record Example(int[] source, int[] target) {
        public Example {
            if (source == null || source.length == 0 || target == null || target.length == 0) {
                throw new IllegalArgumentException("a seq2seq example needs non-empty source and target ids");
            }
        }
    }

    /**
     * Batches: {@code inputIds [B, S]} right-padded with {@code padId}, {@code attentionMask}
     * (FLOAT, 1 = real), {@code labels [B, T]} right-padded with -100.
     */
    public static Collator<Example> collator(int padId) {
        return examples -> {
            if (examples == null || examples.isEmpty()) {
                throw new IllegalArgumentException("cannot collate an empty batch");
            }
            int b = examples.size();
            int s = 0;
            int t = 0;
            for (Example e : examples) {
                s = Math.max(s, e.source().length);
                t = Math.max(t, e.target().length);
            }
            long[][] ids = new long[b][s];
            float[][] mask = new float[b][s];
            long[][] labels = new long[b][t];
            for (int i = 0; i < b; i++) {
                Example e = examples.get(i);
                for (int j = 0; j < s; j++) {
                    ids[i][j] = j < e.source().length ? e.source()[j] : padId;
                    mask[i][j] = j < e.source().length ? 1f : 0f;
                }
                for (int j = 0; j < t; j++) {
                    labels[i][j] = j < e.target().length ? e.target()[j] : Batch.IGNORE_INDEX;
                }
            }
            return new Batch(Nd4j.createFromArray(ids), Nd4j.createFromArray(mask), null, Nd4j.createFromArray(labels));
        };
    }

    /** Mean token cross-entropy of {@code logits [B, T, V]} against {@code labels [B, T]} (−100 skipped). */
    public static Tensor loss(Tensor logits, INDArray labels) {
        long[] ls = logits.shape();
        if (ls.length != 3 || labels.rank() != 2 || labels.size(0) != ls[0] || labels.size(1) != ls[1]) {
            throw new IllegalArgumentException("seq2seq loss needs logits [batch, target, vocab] and labels [batch, target], got "
                    + java.util.Arrays.toString(ls) + " and " + java.util.Arrays.toString(labels.shape()));
        }
        return Ops.crossEntropy(logits, labels.castTo(DataType.INT64), Ops.Reduction.MEAN);
    }

    public static LossFunction loss(LogitsFunction logits) {
        return (model, b) -> loss(logits.logits(model, b), b.labels());
    }

    /** {@code eval_loss} (per target token), {@code perplexity} and teacher-forced {@code token_accuracy}. */
    public static EvalFunction evaluation(LogitsFunction logits) {
        return (model, batches) -> {
            double sum = 0;
            long n = 0;
            long correct = 0;
            for (Batch b : batches) {
                Tensor l = logits.logits(model, b);
                long count = CausalLm.countTargets(b.labels());
                sum += loss(l, b.labels()).item() * count;
                n += count;
                INDArray pred = l.value().argMax(2);
                long[][] lab = b.labels().castTo(DataType.INT64).toLongMatrix();
                for (int i = 0; i < lab.length; i++) {
                    for (int j = 0; j < lab[i].length; j++) {
                        if (lab[i][j] != Batch.IGNORE_INDEX && pred.getLong(i, j) == lab[i][j]) {
                            correct++;
                        }
                    }
                }
            }
            Map<String, Double> m = new LinkedHashMap<>();
            m.put("eval_loss", n == 0 ? Double.NaN : sum / n);
            m.put("perplexity", n == 0 ? Double.NaN : CausalLm.perplexity(sum / n));
            m.put("token_accuracy", n == 0 ? Double.NaN : (double) correct / n);
            return m;
        };
    }

    /**
     * Tokenized pairs: each source and target encoded with the tokenizer's special tokens (T5's
     * {@code </s>} at the end) and truncated to {@code maxSource} / {@code maxTarget}.
     *
     * @throws IllegalArgumentException naming {@code source} and the pair when one encodes to no tokens
     */
    public static List<Example> examples(List<String> sources, List<String> targets, Tokenizer tok, int maxSource,
                                         int maxTarget, String source) {
        if (sources.size() != targets.size()) {
            throw new IllegalArgumentException(source + ": " + sources.size() + " sources but " + targets.size() + " targets");
        }
        List<Example> out = new ArrayList<>();
        for (int i = 0; i < sources.size(); i++) {
            int[] s = tok.encode(sources.get(i), maxSource, true).ids();
            int[] t = tok.encode(targets.get(i), maxTarget, true).ids();
            if (s.length == 0 || t.length == 0) {
                throw new IllegalArgumentException(source + ": pair " + (i + 1) + " has an empty " + (s.length == 0 ? "source" : "target"));
            }
            out.add(new Example(s, t));
        }
        return out;
    }
}
