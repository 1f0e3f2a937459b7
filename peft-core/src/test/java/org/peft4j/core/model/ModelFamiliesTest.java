package org.peft4j.core.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.bert.BertFamily;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.model.decoder.CausalLMs;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.model.gpt2.Gpt2Family;
import org.peft4j.core.model.gpt2.Gpt2LMHeadModel;
import org.peft4j.core.model.llama.LlamaFamily;
import org.peft4j.core.model.llama.LlamaForCausalLM;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The model-family registry: lookups, unknown types, ignored and unexpected keys, the layer-loader hook. */
class ModelFamiliesTest {
    static final Path FIXTURES = Path.of("src/test/resources/fixtures");
    static final Path DECODERS = FIXTURES.resolve("decoders");
    static final Path BERT_TINY = FIXTURES.resolve("bert-tiny");

    @TempDir
    Path tmp;

    /** Every parameter of {@code b} is exactly (bit for bit) the one of {@code a} with the same name. */
    static void assertSameWeights(Module a, Module b, String what) {
        Map<String, INDArray> sa = a.stateDict();
        Map<String, INDArray> sb = b.stateDict();
        assertEquals(sa.keySet(), sb.keySet(), what + ": parameter names");
        for (Map.Entry<String, INDArray> e : sa.entrySet()) {
            INDArray x = e.getValue();
            INDArray y = sb.get(e.getKey());
            assertArrayEquals(x.shape(), y.shape(), what + ": " + e.getKey());
            assertArrayEquals(x.castTo(DataType.DOUBLE).data().asDouble(), y.castTo(DataType.DOUBLE).data().asDouble(), 0.0,
                    what + ": " + e.getKey());
        }
    }

    /** A copy of fixture folder {@code src} (config and single weights file) with its weights edited. */
    Path copyWithWeights(Path src, String name, Consumer<Map<String, INDArray>> edit) throws IOException {
        Path dst = tmp.resolve(name);
        Files.createDirectories(dst);
        Files.copy(src.resolve(HfFolder.CONFIG_FILE), dst.resolve(HfFolder.CONFIG_FILE));
        Map<String, INDArray> w = new LinkedHashMap<>(SafeTensors.load(src.resolve(HfFolder.WEIGHTS_FILE)));
        edit.accept(w);
        SafeTensors.write(dst.resolve(HfFolder.WEIGHTS_FILE), w, HfFolder.PT_METADATA);
        return dst;
    }

    /** A copy of fixture {@code src} whose config has {@code model_type} set to {@code type} (removed when null). */
    Path withModelType(Path src, String type) throws IOException {
        Path dst = copyWithWeights(src, "type-" + type, w -> { });
        ObjectNode cfg = JsonFiles.readObject(dst.resolve(HfFolder.CONFIG_FILE));
        if (type == null) {
            cfg.remove("model_type");
        } else {
            cfg.put("model_type", type);
        }
        JsonFiles.write(dst.resolve(HfFolder.CONFIG_FILE), cfg);
        return dst;
    }

    @Test
    void everyModelTypeMapsToItsFamily() {
        assertEquals(List.of("bert", "gpt2", "llama", "mistral", "mt5", "qwen2", "t5"), ModelFamilies.knownModelTypes());
        assertEquals(List.of("mt5", "t5"), ModelFamilies.modelTypes(ModelFamily.Kind.ENCODER_DECODER));
        assertEquals(List.of("gpt2", "llama", "mistral", "qwen2"), ModelFamilies.modelTypes(ModelFamily.Kind.DECODER));
        assertEquals(List.of("bert"), ModelFamilies.modelTypes(ModelFamily.Kind.ENCODER));
        assertEquals(4, ModelFamilies.all().size());

        ModelFamily<?> bert = ModelFamilies.get("bert", "test");
        assertInstanceOf(BertFamily.class, bert);
        assertEquals(ModelFamily.Kind.ENCODER, bert.kind());
        assertEquals(List.of("bert."), bert.checkpointPrefixes());
        assertFalse(bert.streamsLayers());

        ModelFamily<?> gpt2 = ModelFamilies.get("gpt2", "test");
        assertInstanceOf(Gpt2Family.class, gpt2);
        assertEquals(ModelFamily.Kind.DECODER, gpt2.kind());
        assertEquals(List.of("transformer."), gpt2.checkpointPrefixes());
        assertFalse(gpt2.streamsLayers());

        ModelFamily<?> llama = ModelFamilies.get("llama", "test");
        assertInstanceOf(LlamaFamily.class, llama);
        assertSame(llama, ModelFamilies.get("mistral", "test"));
        assertSame(llama, ModelFamilies.get("qwen2", "test"));
        assertEquals(List.of("model."), llama.checkpointPrefixes());
        assertTrue(llama.streamsLayers());
        assertSame(gpt2, ModelFamilies.find("GPT2").orElseThrow(), "model_type is matched case-insensitively");
        ModelFamily<?> t5 = ModelFamilies.get("t5", "test");
        assertInstanceOf(org.peft4j.core.model.t5.T5Family.class, t5);
        assertSame(t5, ModelFamilies.get("mt5", "test"));
        assertEquals(ModelFamily.Kind.ENCODER_DECODER, t5.kind());
        assertTrue(ModelFamilies.find("bart").isEmpty());
    }

    @Test
    void ignoredKeysAreTheFamiliesBuffers() {
        ObjectNode tied = JsonFiles.mapper().createObjectNode();
        tied.put("model_type", "gpt2").put("vocab_size", 10).put("n_positions", 8).put("n_embd", 8).put("n_layer", 1).put("n_head", 2);
        @SuppressWarnings("unchecked")
        ModelFamily<Object> gpt2 = (ModelFamily<Object>) ModelFamilies.get("gpt2", "test");
        var ignored = gpt2.ignoredKeys(gpt2.parseConfig(tied, "test"));
        assertTrue(ignored.test("h.3.attn.bias"));
        assertTrue(ignored.test("transformer.h.0.attn.masked_bias"));
        assertTrue(ignored.test("lm_head.weight"), "a tied head's duplicate");
        assertFalse(ignored.test("transformer.h.0.attn.c_attn.bias"));
        tied.put("tie_word_embeddings", false);
        assertFalse(gpt2.ignoredKeys(gpt2.parseConfig(tied, "test")).test("lm_head.weight"), "an untied head is a weight");

        @SuppressWarnings("unchecked")
        ModelFamily<Object> bert = (ModelFamily<Object>) ModelFamilies.get("bert", "test");
        var bertIgnored = bert.ignoredKeys(null);
        assertTrue(bertIgnored.test("embeddings.position_ids"));
        assertTrue(bertIgnored.test("bert.embeddings.token_type_ids"));
        assertFalse(bertIgnored.test("embeddings.position_embeddings.weight"));
    }

    @Test
    void theFamilyOfAModelWritesItsConfig() throws IOException {
        DecoderLM gpt2 = Gpt2LMHeadModel.load(DECODERS.resolve("gpt2"));
        assertEquals(gpt2.configJson(), ModelFamilies.configJson(gpt2).orElseThrow());
        DecoderLM qwen2 = LlamaForCausalLM.load(DECODERS.resolve("qwen2"));
        assertEquals(qwen2.configJson(), ModelFamilies.configJson(qwen2).orElseThrow());
        assertTrue(ModelFamilies.get("gpt2", "test").configJson(qwen2).isEmpty(), "only its own family's classes");
        ObjectNode bert = ModelFamilies.configJson(BertModel.load(BERT_TINY)).orElseThrow();
        assertEquals("BertModel", bert.get("architectures").get(0).asText());
        assertEquals("bert", bert.get("model_type").asText());
        assertEquals(16, bert.get("hidden_size").asInt());
        assertTrue(ModelFamilies.configJson(new Linear(2, 3, true, new org.peft4j.core.tensor.Rng(0))).isEmpty());
    }

    @Test
    void unknownModelTypeNamesTheConfigFileAndTheKnownTypes() throws IOException {
        Path dir = withModelType(DECODERS.resolve("gpt2"), "falcon");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelFamilies.forFolder(dir));
        String file = dir.resolve(HfFolder.CONFIG_FILE).toString();
        assertTrue(e.getMessage().contains(file) && e.getMessage().contains("'falcon'"), e.getMessage());
        assertTrue(e.getMessage().contains("bert, gpt2, llama, mistral, mt5, qwen2, t5"), e.getMessage());
        Path none = withModelType(DECODERS.resolve("gpt2"), null);
        e = assertThrows(IllegalArgumentException.class, () -> ModelFamilies.forFolder(none));
        assertTrue(e.getMessage().contains("no model_type") && e.getMessage().contains(none.resolve(HfFolder.CONFIG_FILE).toString()),
                e.getMessage());
    }

    @Test
    void causalLmsRejectsAnEncoderFolder() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CausalLMs.load(BERT_TINY));
        assertTrue(e.getMessage().contains("'bert' is not a decoder") && e.getMessage().contains("config.json")
                && e.getMessage().contains("gpt2, llama, mistral, qwen2"), e.getMessage());
    }

    /** The registry's load of every decoder fixture is the family's own load, weight for weight. */
    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "gpt2-bare", "llama-gqa", "llama-headdim", "mistral", "qwen2"})
    void registryLoadEqualsTheFamilysOwnLoad(String name) throws IOException {
        Path dir = DECODERS.resolve(name);
        ModelFamily<?> family = ModelFamilies.forFolder(dir);
        Module viaRegistry = family.load(dir, 0L);
        DecoderLM direct = name.startsWith("gpt2") ? Gpt2LMHeadModel.load(dir) : LlamaForCausalLM.load(dir);
        assertEquals(direct.getClass(), viaRegistry.getClass(), name);
        assertFalse(viaRegistry.isTraining(), name + ": loaded in eval mode");
        assertSameWeights(direct, viaRegistry, name);
        assertSameWeights(direct, CausalLMs.load(dir), name + " via CausalLMs");
        // the skeleton from the config alone has the same tree (names and shapes), in training mode
        Module skeleton = family.skeleton(JsonFiles.readObject(dir.resolve(HfFolder.CONFIG_FILE)), name, 3L);
        assertTrue(skeleton.isTraining());
        Map<String, Parameter> sp = skeleton.namedParameters();
        assertEquals(direct.namedParameters().keySet(), sp.keySet(), name);
        direct.namedParameters().forEach((k, p) -> assertArrayEquals(p.shape(), sp.get(k).shape(), name + ": " + k));
    }

    @Test
    void bertLoadsThroughTheRegistryAsBertModelLoad() throws IOException {
        ModelFamily<?> family = ModelFamilies.forFolder(BERT_TINY);
        Module m = family.load(BERT_TINY, 0L);
        assertInstanceOf(BertModel.class, m);
        assertSameWeights(BertModel.load(BERT_TINY), m, "bert-tiny");
        // the generic skeleton + strict fill path (what a layer loader goes through) gives the same weights
        Module filled = family.load(BERT_TINY, 0L, (prefix, layer, source) -> null);
        assertInstanceOf(BertModel.class, filled);
        assertFalse(filled.isTraining());
        assertSameWeights(m, filled, "bert-tiny, skeleton filled");
    }

    @Test
    void gpt2SkeletonFillEqualsPlainLoad() throws IOException {
        for (String name : List.of("gpt2", "gpt2-bare")) {
            Path dir = DECODERS.resolve(name);
            Module plain = Gpt2LMHeadModel.load(dir);
            Module filled = ModelFamilies.forFolder(dir).load(dir, 0L, (prefix, layer, source) -> null);
            assertSameWeights(plain, filled, name);
        }
    }

    @Test
    void ignoredBuffersAreSkippedAndAnUnexpectedKeyIsNamedWithItsFile() throws IOException {
        // GPT-2's causal-mask buffers, with and without the prefix
        Path gpt2 = DECODERS.resolve("gpt2");
        Path withBuffers = copyWithWeights(gpt2, "gpt2-buffers", w -> {
            w.put("transformer.h.0.attn.bias", Nd4j.ones(DataType.FLOAT, 1, 1, 4, 4));
            w.put("h.1.attn.masked_bias", Nd4j.scalar(-1e4f));
        });
        Module ref = Gpt2LMHeadModel.load(gpt2);
        assertSameWeights(ref, ModelFamilies.forFolder(withBuffers).load(withBuffers, 0L), "gpt2 + buffers");
        assertSameWeights(ref, ModelFamilies.forFolder(withBuffers).load(withBuffers, 0L, (p, l, s) -> null), "gpt2 + buffers, filled");
        Path extra = copyWithWeights(gpt2, "gpt2-extra", w -> w.put("transformer.h.0.attn.bias_extra", Nd4j.ones(DataType.FLOAT, 2)));
        for (boolean viaLoader : new boolean[]{false, true}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> {
                ModelFamily<?> f = ModelFamilies.forFolder(extra);
                if (viaLoader) {
                    f.load(extra, 0L, (p, l, s) -> null);
                } else {
                    f.load(extra, 0L);
                }
            });
            assertTrue(e.getMessage().contains("unexpected keys [transformer.h.0.attn.bias_extra] (in model.safetensors)")
                    && e.getMessage().contains(extra.toString()), e.getMessage());
        }

        // LLaMA's rotary inverse frequencies
        Path llama = DECODERS.resolve("llama-gqa");
        Path withInvFreq = copyWithWeights(llama, "llama-invfreq", w -> {
            w.put("model.layers.0.self_attn.rotary_emb.inv_freq", Nd4j.ones(DataType.FLOAT, 4));
            w.put("layers.1.self_attn.rotary_emb.inv_freq", Nd4j.ones(DataType.FLOAT, 4));
        });
        assertSameWeights(LlamaForCausalLM.load(llama), ModelFamilies.forFolder(withInvFreq).load(withInvFreq, 0L), "llama + inv_freq");
        Path llamaExtra = copyWithWeights(llama, "llama-extra", w -> w.put("model.layers.0.self_attn.rotary_emb.cos", Nd4j.ones(DataType.FLOAT, 4)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ModelFamilies.forFolder(llamaExtra).load(llamaExtra, 0L, (p, l, s) -> null));
        assertTrue(e.getMessage().contains("unexpected keys [model.layers.0.self_attn.rotary_emb.cos] (in model.safetensors)")
                && e.getMessage().contains(llamaExtra.toString()), e.getMessage());

        // BERT's position_ids / token_type_ids buffers on the skeleton path (what quantized folders load through)
        Path bertBuffers = copyWithWeights(BERT_TINY, "bert-buffers", w -> {
            w.put("embeddings.position_ids", Nd4j.arange(32).castTo(DataType.INT64).reshape(1, 32));
            w.put("embeddings.token_type_ids", Nd4j.zeros(DataType.INT64, 1, 32));
        });
        Module bertRef = BertModel.load(BERT_TINY);
        assertSameWeights(bertRef, ModelFamilies.forFolder(bertBuffers).load(bertBuffers, 0L), "bert + buffers");
        assertSameWeights(bertRef, ModelFamilies.forFolder(bertBuffers).load(bertBuffers, 0L, (p, l, s) -> null), "bert + buffers, filled");
        Path bertExtra = copyWithWeights(BERT_TINY, "bert-extra", w -> w.put("embeddings.position_ids_extra", Nd4j.zeros(DataType.FLOAT, 2)));
        e = assertThrows(IllegalArgumentException.class,
                () -> ModelFamilies.forFolder(bertExtra).load(bertExtra, 0L, (p, l, s) -> null));
        assertTrue(e.getMessage().contains("unexpected keys [embeddings.position_ids_extra] (in model.safetensors)")
                && e.getMessage().contains(bertExtra.toString()), e.getMessage());
    }

    @Test
    void aStreamingFamilyHandsTheLoaderEveryLayerInOrderAndItsKeysCountAsUsed() throws IOException {
        Path src = DECODERS.resolve("llama-gqa");
        int layers = JsonFiles.readObject(src.resolve(HfFolder.CONFIG_FILE)).get("num_hidden_layers").asInt();
        // a key only the loader knows about: unexpected without it, used with it
        Path dir = copyWithWeights(src, "llama-loader", w -> w.put("model.layers.1.mlp.up_proj.scale", Nd4j.ones(DataType.FLOAT, 1)));
        List<String> prefixes = new ArrayList<>();
        LayerLoader loader = (prefix, layer, source) -> {
            prefixes.add(prefix);
            // the placeholders of a streamed layer are zeros until the checkpoint fills them
            Linear up = (Linear) layer.get("mlp.up_proj");
            assertEquals(0.0, up.weight().value().amaxNumber().doubleValue(), 0.0, prefix);
            assertEquals(prefix + "mlp.up_proj.weight", source.keyFor(prefix + "mlp.up_proj.weight"));
            String extra = source.keyFor(prefix + "mlp.up_proj.scale");
            return extra == null ? Set.of() : Set.of(extra);
        };
        Module m = ModelFamilies.forFolder(dir).load(dir, 0L, loader);
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < layers; i++) {
            expected.add("model.layers." + i + ".");
        }
        assertEquals(expected, prefixes);
        assertSameWeights(LlamaForCausalLM.load(src), m, "layers filled after the loader");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LlamaForCausalLM.load(dir));
        assertTrue(e.getMessage().contains("unexpected keys [model.layers.1.mlp.up_proj.scale]"), e.getMessage());
    }

    @Test
    void aNonStreamingFamilyHandsTheLoaderTheWholeModelOnce() throws IOException {
        Path dir = DECODERS.resolve("gpt2");
        List<String> prefixes = new ArrayList<>();
        List<Module> roots = new ArrayList<>();
        Module m = ModelFamilies.forFolder(dir).load(dir, 0L, (prefix, layer, source) -> {
            prefixes.add(prefix);
            roots.add(layer);
            return null;
        });
        assertEquals(List.of(""), prefixes);
        assertSame(m, roots.get(0));
        assertThrows(IllegalArgumentException.class, () -> ModelFamilies.forFolder(dir).load(dir, 0L, null));
    }
}
