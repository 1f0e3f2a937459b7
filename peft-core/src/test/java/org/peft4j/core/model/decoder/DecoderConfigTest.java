package org.peft4j.core.model.decoder;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.peft4j.core.model.gpt2.Gpt2Config;
import org.peft4j.core.model.llama.LlamaConfig;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DecoderConfigTest {
    static Path fixture(String name) {
        return Path.of("src/test/resources/fixtures/decoders", name, "config.json");
    }

    static ConfigFields json(String text) throws Exception {
        return ConfigFields.of(ConfigFields.mapper().readTree(text), "test.json");
    }

    @Test
    void readsGpt2FixtureConfig() {
        Gpt2Config c = Gpt2Config.load(fixture("gpt2"));
        assertEquals(64, c.vocabSize());
        assertEquals(32, c.nPositions());
        assertEquals(16, c.nEmbd());
        assertEquals(2, c.nLayer());
        assertEquals(2, c.nHead());
        assertEquals(64, c.nInner(), "n_inner null → 4 * n_embd");
        assertEquals("gelu_new", c.activationFunction());
        assertEquals(1e-5, c.layerNormEpsilon());
        assertTrue(c.tieWordEmbeddings());
        assertEquals(List.of(63), c.eosTokenIds());
    }

    @Test
    void gpt2DefaultsAndMissingKeys() throws Exception {
        Gpt2Config c = Gpt2Config.fromFields(json("{\"vocab_size\":10,\"n_positions\":8,\"n_embd\":4,\"n_layer\":1,\"n_head\":2,\"extra\":[1]}"));
        assertEquals("gelu_new", c.activationFunction());
        assertEquals(16, c.nInner());
        assertTrue(c.tieWordEmbeddings());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Gpt2Config.fromFields(json("{\"vocab_size\":10,\"n_embd\":4}")));
        assertTrue(e.getMessage().contains("test.json"), e.getMessage());
        assertTrue(e.getMessage().contains("[n_positions, n_layer, n_head]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Gpt2Config.fromFields(
                json("{\"vocab_size\":10,\"n_positions\":8,\"n_embd\":5,\"n_layer\":1,\"n_head\":2}")));
        assertTrue(e.getMessage().contains("divisible"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Gpt2Config.fromFields(
                json("{\"vocab_size\":10,\"n_positions\":8,\"n_embd\":4,\"n_layer\":1,\"n_head\":2,\"activation_function\":\"mish\"}")));
        assertTrue(e.getMessage().contains("mish"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Gpt2Config.fromFields(
                json("{\"vocab_size\":\"ten\",\"n_positions\":8,\"n_embd\":4,\"n_layer\":1,\"n_head\":2}")));
        assertTrue(e.getMessage().contains("vocab_size"), e.getMessage());
    }

    @Test
    void gpt2JsonRoundTrip() throws Exception {
        Gpt2Config c = Gpt2Config.load(fixture("gpt2"));
        ObjectNode n = c.toJson(null);
        assertEquals(c, Gpt2Config.fromFields(ConfigFields.of(n, "roundtrip")));
        assertTrue(n.get("n_inner").isNull());
    }

    @Test
    void readsLlamaFamilyFixtureConfigs() {
        LlamaConfig g = LlamaConfig.load(fixture("llama-gqa"));
        assertEquals(4, g.numAttentionHeads());
        assertEquals(2, g.numKeyValueHeads());
        assertEquals(8, g.headDim());
        assertTrue(g.tieWordEmbeddings());
        assertFalse(g.qkvBias());
        LlamaConfig h = LlamaConfig.load(fixture("llama-headdim"));
        assertEquals(8, h.headDim(), "explicit head_dim differs from 24 / 4");
        assertTrue(h.qkvBias());
        assertTrue(h.outputBias());
        assertEquals(500000.0, h.ropeTheta());
        LlamaConfig q = LlamaConfig.load(fixture("qwen2"));
        assertTrue(q.qkvBias(), "qwen2 always has q/k/v biases");
        assertFalse(q.outputBias());
        assertNull(q.slidingWindow(), "use_sliding_window false");
        LlamaConfig m = LlamaConfig.load(fixture("mistral"));
        assertEquals(4096, m.slidingWindow());
        assertEquals(1, m.numKeyValueHeads());
    }

    @Test
    void llamaDefaultsFollowHf() throws Exception {
        LlamaConfig c = LlamaConfig.fromFields(json("{\"vocab_size\":10,\"hidden_size\":8,\"intermediate_size\":16,"
                + "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"head_dim\":null}"));
        assertEquals("llama", c.modelType());
        assertEquals(2, c.numKeyValueHeads());
        assertEquals(4, c.headDim());
        assertEquals(1e-6, c.rmsNormEps());
        assertEquals(10000.0, c.ropeTheta());
        assertEquals(2048, c.maxPositionEmbeddings());
        assertFalse(c.tieWordEmbeddings());
        LlamaConfig m = LlamaConfig.fromFields(json("{\"model_type\":\"mistral\",\"vocab_size\":10,\"hidden_size\":8,"
                + "\"intermediate_size\":16,\"num_hidden_layers\":1,\"num_attention_heads\":2}"));
        assertEquals(4096, m.slidingWindow());
        LlamaConfig v5 = LlamaConfig.fromFields(json("{\"vocab_size\":10,\"hidden_size\":8,\"intermediate_size\":16,"
                + "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":5.0}}"));
        assertEquals(5.0, v5.ropeTheta());
    }

    @Test
    void llamaMissingAndUnsupportedKeysAreNamed() throws Exception {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LlamaConfig.fromFields(json("{\"vocab_size\":10,\"hidden_size\":8}")));
        assertTrue(e.getMessage().contains("[intermediate_size, num_hidden_layers, num_attention_heads]"), e.getMessage());
        String base = "\"vocab_size\":10,\"hidden_size\":8,\"intermediate_size\":16,\"num_hidden_layers\":1,\"num_attention_heads\":4";
        e = assertThrows(IllegalArgumentException.class,
                () -> LlamaConfig.fromFields(json("{" + base + ",\"num_key_value_heads\":3}")));
        assertTrue(e.getMessage().contains("num_key_value_heads 3"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> LlamaConfig.fromFields(json("{" + base + ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8}}")));
        assertTrue(e.getMessage().contains("llama3"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> LlamaConfig.fromFields(json("{" + base + ",\"model_type\":\"gemma\"}")));
        assertTrue(e.getMessage().contains("gemma"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> LlamaConfig.fromFields(json("{" + base + ",\"hidden_act\":\"gelu\"}")));
        assertTrue(e.getMessage().contains("hidden_act"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> LlamaConfig.load(Path.of("no/such/config.json")));
        assertTrue(e.getMessage().contains("no/such/config.json"), e.getMessage());
    }

    @Test
    void llamaJsonRoundTrip() {
        for (String name : new String[]{"llama-gqa", "llama-headdim", "qwen2", "mistral"}) {
            LlamaConfig c = LlamaConfig.load(fixture(name));
            assertEquals(c, LlamaConfig.fromFields(ConfigFields.of(c.toJson(null), name)), name);
        }
    }
}
