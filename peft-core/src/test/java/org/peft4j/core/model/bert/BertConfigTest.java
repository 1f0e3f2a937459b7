package org.peft4j.core.model.bert;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BertConfigTest {
    /** sentence-transformers/all-MiniLM-L6-v2's config.json as published (plus an unknown key). */
    static final String MINILM_CONFIG = """
            {
              "_name_or_path": "nreimers/MiniLM-L6-H384-uncased",
              "architectures": ["BertModel"],
              "attention_probs_dropout_prob": 0.1,
              "gradient_checkpointing": false,
              "hidden_act": "gelu",
              "hidden_dropout_prob": 0.1,
              "hidden_size": 384,
              "initializer_range": 0.02,
              "intermediate_size": 1536,
              "layer_norm_eps": 1e-12,
              "max_position_embeddings": 512,
              "model_type": "bert",
              "num_attention_heads": 12,
              "num_hidden_layers": 6,
              "pad_token_id": 0,
              "position_embedding_type": "absolute",
              "transformers_version": "4.8.2",
              "type_vocab_size": 2,
              "use_cache": true,
              "vocab_size": 30522,
              "some_future_key": {"nested": [1, 2]}
            }
            """;

    @Test
    void readsHuggingFaceConfig() {
        BertConfig c = BertConfig.fromJson(MINILM_CONFIG, "config.json");
        assertEquals(30522, c.vocabSize());
        assertEquals(384, c.hiddenSize());
        assertEquals(6, c.numHiddenLayers());
        assertEquals(12, c.numAttentionHeads());
        assertEquals(32, c.headDim());
        assertEquals(1536, c.intermediateSize());
        assertEquals("gelu", c.hiddenAct());
        assertEquals(0.1, c.hiddenDropoutProb(), 0);
        assertEquals(0.1, c.attentionProbsDropoutProb(), 0);
        assertEquals(512, c.maxPositionEmbeddings());
        assertEquals(2, c.typeVocabSize());
        assertEquals(1e-12, c.layerNormEps(), 0);
        assertEquals(0, c.padTokenId());
        assertEquals(2, c.numLabels());
        assertEquals(List.of("LABEL_0", "LABEL_1"), c.id2label());
        assertNull(c.classifierDropout());
        assertEquals(0.1, c.effectiveClassifierDropout(), 0);
        assertEquals(BertConfig.Pooling.POOLER, c.classifierPooling());
    }

    @Test
    void readsLabels() {
        String json = MINILM_CONFIG.replace("\"vocab_size\": 30522,",
                "\"vocab_size\": 30522, \"id2label\": {\"1\": \"positive\", \"0\": \"negative\", \"2\": \"neutral\"},"
                        + " \"classifier_dropout\": 0.2, \"classifier_pooling\": \"mean\",");
        BertConfig c = BertConfig.fromJson(json, "labels.json");
        assertEquals(List.of("negative", "positive", "neutral"), c.id2label());
        assertEquals(3, c.numLabels());
        assertEquals(0.2, c.effectiveClassifierDropout(), 0);
        assertEquals(BertConfig.Pooling.MEAN, c.classifierPooling());

        BertConfig five = BertConfig.fromJson(MINILM_CONFIG.replace("\"vocab_size\"", "\"num_labels\": 5, \"vocab_size\""), "n.json");
        assertEquals(5, five.numLabels());
        assertEquals("LABEL_4", five.id2label().get(4));
    }

    @Test
    void missingRequiredKeysAreNamed() {
        String json = MINILM_CONFIG.replace("\"hidden_size\": 384,", "").replace("\"num_hidden_layers\": 6,", "");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BertConfig.fromJson(json, "cfg.json"));
        assertTrue(e.getMessage().contains("hidden_size"), e.getMessage());
        assertTrue(e.getMessage().contains("num_hidden_layers"), e.getMessage());
        assertTrue(e.getMessage().contains("cfg.json"), e.getMessage());
    }

    @Test
    void badValuesAreNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BertConfig.fromJson(MINILM_CONFIG.replace("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"mish\""), "a.json"));
        assertTrue(e.getMessage().contains("mish"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> BertConfig.fromJson(MINILM_CONFIG.replace("\"num_attention_heads\": 12", "\"num_attention_heads\": 5"), "b.json"));
        assertTrue(e.getMessage().contains("num_attention_heads"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> BertConfig.fromJson(MINILM_CONFIG.replace("\"hidden_size\": 384", "\"hidden_size\": \"384\""), "c.json"));
        assertTrue(e.getMessage().contains("hidden_size"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> BertConfig.fromJson("{ nope", "d.json"));
        assertTrue(e.getMessage().contains("d.json"), e.getMessage());
    }

    @Test
    void jsonRoundTrip(@TempDir Path dir) throws Exception {
        BertConfig c = BertConfig.builder().vocabSize(100).hiddenSize(16).numHiddenLayers(2).numAttentionHeads(4)
                .intermediateSize(32).maxPositionEmbeddings(64).hiddenAct("gelu_new").layerNormEps(1e-5)
                .id2label(List.of("a", "b", "c")).classifierPooling(BertConfig.Pooling.CLS).classifierDropout(0.3).build();
        Path f = dir.resolve("config.json");
        Files.writeString(f, c.toJson("BertForSequenceClassification"));
        String text = Files.readString(f);
        assertTrue(text.contains("\"model_type\" : \"bert\""), text);
        assertTrue(text.contains("BertForSequenceClassification"), text);
        assertEquals(c, BertConfig.load(f));
    }
}
