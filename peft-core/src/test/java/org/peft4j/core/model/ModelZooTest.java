package org.peft4j.core.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tokenizer.BatchEncoding;
import org.peft4j.core.tokenizer.Tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelZooTest {

    private static double cos(INDArray e, int i, int j) {
        return e.getRow(i).mul(e.getRow(j)).sumNumber().doubleValue();   // rows are unit length
    }

    @Test
    void miniLmInOneCall() {
        try (ModelZoo.Pretrained p = ModelZoo.miniLmL6()) {
            assertEquals(ModelZoo.MINILM_L6, p.name());
            assertEquals(6, p.config().numHiddenLayers());
            assertEquals(384, p.config().hiddenSize());
            assertFalse(p.model().isTraining());
            assertFalse(p.model().hasPooler());
            assertEquals(22_565_376L, p.model().numParameters());   // 11,918,592 embeddings + 6 x 1,774,464 (no pooler)
            assertArrayEquals(new int[]{101, 1996, 3185, 2001, 6919, 1998, 1045, 3866, 2009, 1012, 102},
                    p.tokenizer().encode("The movie was wonderful and I loved it.").ids());
        }
        assertThrows(IllegalArgumentException.class, () -> ModelZoo.weights("bert-base-uncased"));
    }

    @Test
    void modelsDoNotShareWeightsWithTheCache() {
        try (ModelZoo.Pretrained a = ModelZoo.miniLmL6()) {
            INDArray w = a.model().namedParameters().get("encoder.layer.0.attention.self.query.weight").value();
            float before = w.getFloat(0, 0);
            w.putScalar(0, 0, before + 1f);
            assertEquals(before, ModelZoo.weights(ModelZoo.MINILM_L6).weights()
                    .get("encoder.layer.0.attention.self.query.weight").getFloat(0, 0), 0f);
            try (ModelZoo.Pretrained b = ModelZoo.miniLmL6()) {
                assertEquals(before, b.model().namedParameters().get("encoder.layer.0.attention.self.query.weight")
                        .value().getFloat(0, 0), 0f);
            }
        }
    }

    @Test
    void paraphrasesAreCloserThanUnrelatedSentences() {
        List<String> s = List.of(
                "A man is playing a guitar.",
                "Someone is playing an acoustic guitar.",
                "The stock market fell sharply today.",
                "Share prices dropped steeply on Wall Street.",
                "How do I bake sourdough bread?");
        try (ModelZoo.Pretrained p = ModelZoo.miniLmL6(); NoGrad ignored = NoGrad.enter()) {
            BatchEncoding batch = p.tokenizer().encodeBatch(s, 128, true, Tokenizer.Padding.LONGEST);
            INDArray e = p.model().sentenceEmbedding(batch, true).value();
            for (int i = 0; i < s.size(); i++) {
                assertEquals(1.0, e.getRow(i).norm2Number().doubleValue(), 1e-5);
            }
            double guitar = cos(e, 0, 1);
            double market = cos(e, 2, 3);
            double[] unrelated = {cos(e, 0, 2), cos(e, 0, 3), cos(e, 1, 2), cos(e, 1, 4), cos(e, 2, 4), cos(e, 3, 4), cos(e, 0, 4)};
            System.out.printf("MiniLM cosine: paraphrases %.3f, %.3f; unrelated %s%n", guitar, market, java.util.Arrays.toString(unrelated));
            for (double u : unrelated) {
                assertTrue(guitar > u + 0.2, "guitar paraphrase " + guitar + " vs unrelated " + u);
                assertTrue(market > u + 0.2, "market paraphrase " + market + " vs unrelated " + u);
            }
        }
    }

    @Test
    void exportedMiniLmReloadsWithIdenticalOutputs(@TempDir Path dir) {
        try (ModelZoo.Pretrained p = ModelZoo.miniLmL6(); NoGrad ignored = NoGrad.enter()) {
            p.model().save(dir);
            assertTrue(Files.isRegularFile(dir.resolve("model.safetensors")));
            BertModel back = BertModel.load(dir);
            assertEquals(p.config(), back.config());
            BatchEncoding batch = p.tokenizer().encodeBatch(
                    List.of("Exported weights must load back unchanged.", "Short one."), 64, true, Tokenizer.Padding.LONGEST);
            assertEquals(p.model().forward(batch).lastHiddenState().value(), back.forward(batch).lastHiddenState().value());
        }
    }
}
