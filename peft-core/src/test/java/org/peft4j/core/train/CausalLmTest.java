package org.peft4j.core.train;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.model.ModelZoo;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.tokenizer.BatchEncoding;
import org.peft4j.core.tokenizer.Encoding;
import org.peft4j.core.tokenizer.HfTokenizer;
import org.peft4j.core.tokenizer.Tokenizer;

import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CausalLmTest {
    /** logits [2, 3, 4]: batch 0 = rows a0..a2, batch 1 = rows b0..b2. */
    private static final float[][][] LOGITS = {
            {{1.0f, 0.0f, -1.0f, 0.5f}, {0.2f, 2.0f, 0.0f, -0.3f}, {3.0f, 1.0f, 1.0f, 1.0f}},
            {{0.0f, 0.0f, 0.0f, 0.0f}, {-1.0f, 0.5f, 2.5f, 0.0f}, {0.1f, 0.2f, 0.3f, 0.4f}}};
    /** labels [2, 3]: position 0 is never a target; -100 at batch 1, position 2 is skipped. */
    private static final long[][] LABELS = {{7, 3, 1}, {7, 2, -100}};

    /** -log softmax(row)[k] in double, computed here without the library. */
    private static double nll(float[] row, int k) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : row) {
            max = Math.max(max, v);
        }
        double z = 0;
        for (float v : row) {
            z += Math.exp(v - max);
        }
        return -(row[k] - max - Math.log(z));
    }

    private static Batch batch(float[][][] logits, long[][] labels) {
        INDArray ids = Nd4j.zeros(DataType.INT64, labels.length, labels[0].length);
        INDArray mask = Nd4j.ones(DataType.FLOAT, labels.length, labels[0].length);
        return new Batch(ids, mask, null, Nd4j.createFromArray(labels));
    }

    /** A "model" whose logits are fixed per batch (looked up by identity). */
    private static LogitsFunction fixed(Batch b1, float[][][] l1, Batch b2, float[][][] l2) {
        Map<Batch, float[][][]> byBatch = new IdentityHashMap<>();
        byBatch.put(b1, l1);
        if (b2 != null) {
            byBatch.put(b2, l2);
        }
        return (m, b) -> Tensor.constant(Nd4j.createFromArray(byBatch.get(b)));
    }

    @Test
    void shiftedLossEqualsHandComputedNextTokenCrossEntropy() {
        // targets: logits a0 -> label 3, a1 -> 1; b0 -> 2; b1 -> -100 (skipped); the last position predicts nothing
        double expected = (nll(LOGITS[0][0], 3) + nll(LOGITS[0][1], 1) + nll(LOGITS[1][0], 2)) / 3;
        Tensor loss = CausalLm.shiftedLoss(Tensor.constant(Nd4j.createFromArray(LOGITS)), Nd4j.createFromArray(LABELS));
        assertEquals(1, loss.length());
        assertEquals(expected, loss.item(), 1e-5);
        assertEquals(3, CausalLm.countTargets(Nd4j.createFromArray(LABELS)));
    }

    @Test
    void uniformPredictionHasPerplexityEqualToVocabularySize() {
        int vocab = 7;
        float[][][] uniform = new float[2][5][vocab];          // all-zero logits: p = 1/7 everywhere
        long[][] labels = {{1, 2, 3, 4, 5}, {6, 0, 1, -100, -100}};
        Batch b = batch(uniform, labels);
        Map<String, Double> m = CausalLm.evaluation(fixed(b, uniform, null, null)).evaluate(null, List.of(b));
        assertEquals(Math.log(vocab), m.get("eval_loss"), 1e-6);
        assertEquals(vocab, m.get("perplexity"), 1e-5);
        assertEquals(1.0, CausalLm.perplexity(0.0), 0.0);
        assertEquals(2.0, CausalLm.perplexity(Math.log(2)), 1e-12);
    }

    @Test
    void evaluationWeightsEachBatchByItsPredictedTokens() {
        Batch first = batch(LOGITS, LABELS);                   // 3 targets
        float[][][] second = {{{2.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 1.0f}}};
        long[][] secondLabels = {{5, 0}};                       // 1 target: row 0 -> label 0
        Batch other = batch(second, secondLabels);
        double total = nll(LOGITS[0][0], 3) + nll(LOGITS[0][1], 1) + nll(LOGITS[1][0], 2) + nll(second[0][0], 0);
        Map<String, Double> m = CausalLm.evaluation(fixed(first, LOGITS, other, second))
                .evaluate(null, List.of(first, other));
        assertEquals(total / 4, m.get("eval_loss"), 1e-5);
        assertEquals(Math.exp(total / 4), m.get("perplexity"), 1e-4);
    }

    @Test
    void noPredictedTokenGivesNaN() {
        long[][] none = {{4, -100, -100}};
        float[][][] l = {LOGITS[0]};
        Batch b = batch(l, none);
        Map<String, Double> m = CausalLm.evaluation(fixed(b, l, null, null)).evaluate(null, List.of(b));
        assertTrue(Double.isNaN(m.get("eval_loss")) && Double.isNaN(m.get("perplexity")), m.toString());
        assertEquals(0, CausalLm.countTargets(Nd4j.createFromArray(none)));
    }

    @Test
    void lossFunctionUsesTheBatchLabels() {
        Batch b = batch(LOGITS, LABELS);
        double expected = (nll(LOGITS[0][0], 3) + nll(LOGITS[0][1], 1) + nll(LOGITS[1][0], 2)) / 3;
        assertEquals(expected, CausalLm.loss(fixed(b, LOGITS, null, null)).loss(null, b).item(), 1e-5);
    }

    @Test
    void shiftedLossGradientMatchesFiniteDifferences() {
        INDArray labels = Nd4j.createFromArray(LABELS);
        INDArray x = Nd4j.createFromArray(LOGITS).castTo(DataType.DOUBLE);
        double worst = GradCheck.of("CausalLm.shiftedLoss", in -> CausalLm.shiftedLoss(in[0], labels), x).check();
        assertTrue(worst <= 1.0, "scaled gradient error " + worst);
        // the last position and the skipped target get no gradient
        Tensor v = Tensor.variable(Nd4j.createFromArray(LOGITS).castTo(DataType.DOUBLE));
        CausalLm.shiftedLoss(v, labels).backward();
        assertEquals(0.0, v.grad().get(NDArrayIndex.all(), NDArrayIndex.point(2), NDArrayIndex.all())
                .amaxNumber().doubleValue(), 0.0);
        assertEquals(0.0, v.grad().get(NDArrayIndex.point(1), NDArrayIndex.point(1), NDArrayIndex.all())
                .amaxNumber().doubleValue(), 0.0);
        // and a counted position does: softmax - onehot, divided by the 3 targets
        assertEquals((Math.exp(-nll(LOGITS[0][0], 3)) - 1) / 3, v.grad().getDouble(0, 0, 3), 1e-6);
    }

    @Test
    void badShapesAreRejectedWithBothShapes() {
        Tensor logits = Tensor.constant(Nd4j.createFromArray(LOGITS));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CausalLm.shiftedLoss(logits, Nd4j.createFromArray(new long[][]{{1, 2}, {3, 4}})));
        assertTrue(e.getMessage().contains("[2, 3, 4]") && e.getMessage().contains("[2, 2]"), e.getMessage());
        Tensor one = Tensor.constant(Ops.slice(logits, 1, 0, 1).value().dup());
        e = assertThrows(IllegalArgumentException.class,
                () -> CausalLm.shiftedLoss(one, Nd4j.createFromArray(new long[][]{{1}, {2}})));
        assertTrue(e.getMessage().contains("at least 2 tokens"), e.getMessage());
    }

    @Test
    void examplesAreTruncatedTokenSequencesLabelledWithThemselves() {
        try (HfTokenizer tok = ModelZoo.tokenizer(ModelZoo.MINILM_L6)) {
            // BERT uncased vocabulary: [CLS] = 101, hello = 7592, world = 2088, [SEP] = 102
            List<TokenExample> ex = CausalLm.examples(List.of("hello world", "hello world"), tok, 3, "t.txt");
            assertEquals(2, ex.size());
            assertArrayEquals(new int[]{101, 7592, 102}, ex.get(0).ids());
            assertArrayEquals(ex.get(0).ids(), ex.get(0).labels());
            assertArrayEquals(new int[]{101, 7592, 2088, 102}, CausalLm.examples(List.of("hello world"), tok, 16, "t.txt").get(0).ids());
        }
    }

    @Test
    void textsOfOneTokenAreLeftOutAndNoneLeftIsAnError() {
        Tokenizer words = new WordTokenizer(List.of("a", "b", "c"));
        List<TokenExample> ex = CausalLm.examples(List.of("a b c", "b", "c a"), words, 8, "w.txt");
        assertEquals(2, ex.size(), "the one-word text predicts nothing");
        assertArrayEquals(new int[]{0, 1, 2}, ex.get(0).ids());
        assertArrayEquals(new int[]{2, 0}, ex.get(1).labels());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CausalLm.examples(List.of("a", "b"), words, 8, "short.txt"));
        assertTrue(e.getMessage().contains("short.txt") && e.getMessage().contains("at least 2 tokens"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> CausalLm.examples(List.of("a b"), words, 0, "w.txt"));
    }

    /** Whitespace words to their index in a fixed vocabulary; no special tokens. */
    private record WordTokenizer(List<String> vocab) implements Tokenizer {
        @Override
        public Encoding encode(String text, int maxLength, boolean truncation) {
            String[] w = text.strip().split("\\s+");
            int n = truncation ? Math.min(w.length, maxLength) : w.length;
            int[] ids = new int[n];
            for (int i = 0; i < n; i++) {
                ids[i] = vocab.indexOf(w[i]);
            }
            return new Encoding(ids, new int[n], new int[n]);
        }

        @Override
        public BatchEncoding encodeBatch(List<String> texts, int maxLength, boolean truncation, Padding padding) {
            throw new UnsupportedOperationException("not used by CausalLm.examples");
        }

        @Override
        public String decode(int[] ids, boolean skipSpecialTokens) {
            StringBuilder sb = new StringBuilder();
            for (int id : ids) {
                sb.append(sb.length() == 0 ? "" : " ").append(vocab.get(id));
            }
            return sb.toString();
        }

        @Override
        public int tokenToId(String token) {
            return vocab.indexOf(token);
        }

        @Override
        public int clsId() {
            return -1;
        }

        @Override
        public int sepId() {
            return -1;
        }

        @Override
        public int padId() {
            return -1;
        }

        @Override
        public int unkId() {
            return -1;
        }

        @Override
        public int maskId() {
            return -1;
        }

        @Override
        public int vocabSize() {
            return vocab.size();
        }

        @Override
        public void close() {
        }
    }
}
