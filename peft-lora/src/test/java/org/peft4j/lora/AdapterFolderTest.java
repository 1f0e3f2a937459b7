package org.peft4j.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.peft.ModulesToSaveWrapper;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.NoGrad;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.lora.TestUtil.assertExactlyEqual;

/** PEFT adapter folders: layout, key names and shapes, round trips, and bad input. */
class AdapterFolderTest {

    @TempDir
    Path tmp;

    private static INDArray run(ToyModel m, INDArray ids) {
        try (NoGrad ignored = NoGrad.enter()) {
            return m.forward(ids).value().dup();
        }
    }

    private static PeftModel adapted(ToyModel m) {
        PeftModel pm = Peft.apply(m, LoraConfig.builder().r(2).loraAlpha(4).targetModules("q_proj", "v_proj", "embed_tokens")
                .modulesToSave("classifier").baseModelNameOrPath("toy-model").seed(1).build());
        pm.addAdapter("dora", LoraConfig.builder().r(3).useDora(true).targetModules("up_proj").bias("lora_only").seed(2).build());
        LoraModelTest.randomizeAdapters(pm, 17);
        ((org.peft4j.core.nn.Linear) ((ModulesToSaveWrapper) m.get("classifier")).copyFor("default")).bias().value().addi(0.5);
        return pm;
    }

    @Test
    void savedKeysShapesAndConfigFollowPeft() throws IOException {
        ToyModel m = new ToyModel(2, false, 1);
        PeftModel pm = adapted(m);
        Path dir = tmp.resolve("adapter");
        pm.save(dir);
        assertTrue(Files.isRegularFile(dir.resolve("adapter_config.json")));
        assertTrue(Files.isRegularFile(dir.resolve("adapter_model.safetensors")));
        assertTrue(Files.isRegularFile(dir.resolve("dora/adapter_config.json")), "non-default adapters go to <dir>/<name>/");
        Map<String, INDArray> t = SafeTensors.load(dir.resolve("adapter_model.safetensors"));
        Map<String, long[]> expected = new TreeMap<>();
        for (int i = 0; i < 2; i++) {
            for (String p : List.of("q_proj", "v_proj")) {
                String k = "base_model.model.model.layers." + i + ".self_attn." + p;
                expected.put(k + ".lora_A.weight", new long[]{2, ToyModel.DIM});
                expected.put(k + ".lora_B.weight", new long[]{ToyModel.DIM, 2});
            }
        }
        expected.put("base_model.model.model.embed_tokens.lora_embedding_A", new long[]{2, ToyModel.VOCAB});
        expected.put("base_model.model.model.embed_tokens.lora_embedding_B", new long[]{ToyModel.DIM, 2});
        expected.put("base_model.model.classifier.weight", new long[]{ToyModel.CLASSES, ToyModel.DIM});
        expected.put("base_model.model.classifier.bias", new long[]{ToyModel.CLASSES});
        assertEquals(expected.keySet(), new TreeMap<>(t).keySet());
        expected.forEach((k, s) -> assertArrayEquals(s, t.get(k).shape(), k));
        assertEquals(Map.of("format", "pt"), SafeTensors.readMetadata(dir.resolve("adapter_model.safetensors")));
        // the classifier copy is saved, not the frozen original
        INDArray copyBias = ((org.peft4j.core.nn.Linear) ((ModulesToSaveWrapper) m.get("classifier")).copyFor("default")).bias().value();
        assertExactlyEqual(copyBias, t.get("base_model.model.classifier.bias"), "modules_to_save tensor");

        Map<String, INDArray> d = SafeTensors.load(dir.resolve("dora/adapter_model.safetensors"));
        Map<String, long[]> expDora = new TreeMap<>();
        for (int i = 0; i < 2; i++) {
            String k = "base_model.model.model.layers." + i + ".mlp.up_proj";
            expDora.put(k + ".lora_A.weight", new long[]{3, ToyModel.DIM});
            expDora.put(k + ".lora_B.weight", new long[]{2 * ToyModel.DIM, 3});
            expDora.put(k + ".lora_magnitude_vector", new long[]{2 * ToyModel.DIM});
            expDora.put(k + ".base_layer.bias", new long[]{2 * ToyModel.DIM});
        }
        assertEquals(expDora.keySet(), new TreeMap<>(d).keySet());
        expDora.forEach((k, s) -> assertArrayEquals(s, d.get(k).shape(), k));

        JsonNode cfg = new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
        assertEquals("LORA", cfg.get("peft_type").asText());
        assertEquals("peft4j-0.1.0", cfg.get("peft_version").asText());
        assertEquals("toy-model", cfg.get("base_model_name_or_path").asText());
        assertTrue(cfg.get("inference_mode").asBoolean(), "saved configs say inference_mode=true, as PEFT writes them");
        assertEquals(2, cfg.get("r").asInt());
        assertEquals("classifier", cfg.get("modules_to_save").get(0).asText());
        String text = Files.readString(dir.resolve("adapter_config.json"));
        assertTrue(text.startsWith("{\n  \"alpha_pattern\": {},\n  \"base_model_name_or_path\": \"toy-model\","), text);
        assertFalse(pm.activeConfig().inferenceMode(), "saving must not change the live config");
    }

    @Test
    void saveThenLoadGivesIdenticalTensorsAndOutputs() {
        INDArray ids = ToyModel.ids(2, 3, 5);
        ToyModel m = new ToyModel(2, true, 2);
        m.eval();
        PeftModel pm = adapted(m);
        Path dir = tmp.resolve("rt");
        pm.save(dir);
        Map<String, INDArray> savedDefault = pm.adapterStateDict("default");
        INDArray outDefault = run(m, ids);
        pm.setAdapter("dora");
        INDArray outDora = run(m, ids);
        Map<String, INDArray> savedDora = pm.adapterStateDict("dora");

        ToyModel fresh = new ToyModel(2, true, 2);
        fresh.eval();
        PeftModel loaded = PeftModel.load(fresh, dir);
        loaded.loadAdapter(dir.resolve("dora"), "dora");
        assertEquals(List.of("default", "dora"), loaded.adapterNames());
        assertTrue(loaded.trainableParameters().isEmpty(), "loaded adapters are frozen (inference) by default");
        assertExactlyEqual(outDefault, run(fresh, ids), "outputs of the reloaded default adapter");
        savedDefault.forEach((k, v) -> assertExactlyEqual(v, loaded.adapterStateDict("default").get(k), k));
        loaded.setAdapter("dora");
        assertExactlyEqual(outDora, run(fresh, ids), "outputs of the reloaded DoRA adapter");
        savedDora.forEach((k, v) -> assertExactlyEqual(v, loaded.adapterStateDict("dora").get(k), k));

        PeftModel trainable = PeftModel.load(new ToyModel(2, true, 2), dir, "default", true);
        assertFalse(trainable.trainableParameters().isEmpty());
        assertFalse(trainable.activeConfig().inferenceMode());
    }

    @Test
    void loadsFilesWithTheAdapterNameInsideKeys() throws IOException {
        INDArray ids = ToyModel.ids(3, 2, 4);
        ToyModel m = new ToyModel(1, false, 3);
        m.eval();
        PeftModel pm = Peft.apply(m, LoraConfig.builder().r(2).targetModules("q_proj", "embed_tokens").useDora(false).build());
        LoraModelTest.randomizeAdapters(pm, 4);
        INDArray expected = run(m, ids);
        Path dir = tmp.resolve("named");
        pm.save(dir);
        // rewrite the tensors with PEFT's in-memory names (".default" inside), as some writers leave them
        Map<String, INDArray> t = SafeTensors.load(dir.resolve("adapter_model.safetensors"));
        Map<String, INDArray> renamed = new LinkedHashMap<>();
        t.forEach((k, v) -> renamed.put(k.replace("lora_A.weight", "lora_A.default.weight")
                .replace("lora_embedding_B", "lora_embedding_B.default"), v));
        SafeTensors.write(dir.resolve("adapter_model.safetensors"), renamed);
        ToyModel fresh = new ToyModel(1, false, 3);
        fresh.eval();
        PeftModel.load(fresh, dir, "mine");
        assertExactlyEqual(expected, run(fresh, ids), "loaded from keys with adapter names");
    }

    @Test
    void badAdapterFoldersAreRejectedWithPreciseMessages() throws IOException {
        ToyModel m = new ToyModel(1, false, 4);
        PeftModel pm = Peft.apply(m, LoraConfig.builder().r(2).targetModules("q_proj").build());
        Path dir = tmp.resolve("good");
        pm.save(dir);

        // target modules that do not exist in the base model
        Path other = tmp.resolve("other");
        Files.createDirectories(other);
        Files.writeString(other.resolve("adapter_config.json"),
                "{\"peft_type\": \"LORA\", \"r\": 2, \"target_modules\": [\"c_attn\"]}");
        Files.copy(dir.resolve("adapter_model.safetensors"), other.resolve("adapter_model.safetensors"));
        IllegalArgumentException e1 = assertThrows(IllegalArgumentException.class, () -> PeftModel.load(new ToyModel(1, false, 4), other));
        assertTrue(e1.getMessage().contains("[c_attn]") && e1.getMessage().contains("matched no module")
                && e1.getMessage().contains("q_proj"), e1.getMessage());

        // tensors of modules the base model does not have (config fits, tensors do not)
        Path extra = tmp.resolve("extra");
        Files.createDirectories(extra);
        Files.copy(dir.resolve("adapter_config.json"), extra.resolve("adapter_config.json"));
        Map<String, INDArray> t = new LinkedHashMap<>(SafeTensors.load(dir.resolve("adapter_model.safetensors")));
        t.put("base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight", t.values().iterator().next());
        SafeTensors.write(extra.resolve("adapter_model.safetensors"), t);
        IllegalArgumentException e2 = assertThrows(IllegalArgumentException.class, () -> PeftModel.load(new ToyModel(1, false, 4), extra));
        assertTrue(e2.getMessage().contains("layers.7.self_attn.q_proj.lora_A.weight")
                && e2.getMessage().contains("do not exist in this base model"), e2.getMessage());

        // shapes that do not fit: an adapter trained for a wider model
        Path wide = tmp.resolve("wide");
        Files.createDirectories(wide);
        Files.copy(dir.resolve("adapter_config.json"), wide.resolve("adapter_config.json"));
        Map<String, INDArray> w = new LinkedHashMap<>(SafeTensors.load(dir.resolve("adapter_model.safetensors")));
        String key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
        w.put(key, org.nd4j.linalg.factory.Nd4j.zeros(2, 12));
        SafeTensors.write(wide.resolve("adapter_model.safetensors"), w);
        IllegalArgumentException e3 = assertThrows(IllegalArgumentException.class, () -> PeftModel.load(new ToyModel(1, false, 4), wide));
        assertTrue(e3.getMessage().contains(key) && e3.getMessage().contains("[2, 12]") && e3.getMessage().contains("[2, 8]"),
                e3.getMessage());

        // missing tensors
        Path partial = tmp.resolve("partial");
        Files.createDirectories(partial);
        Files.copy(dir.resolve("adapter_config.json"), partial.resolve("adapter_config.json"));
        Map<String, INDArray> p = new LinkedHashMap<>(SafeTensors.load(dir.resolve("adapter_model.safetensors")));
        p.remove("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
        SafeTensors.write(partial.resolve("adapter_model.safetensors"), p);
        IllegalArgumentException e4 = assertThrows(IllegalArgumentException.class, () -> PeftModel.load(new ToyModel(1, false, 4), partial));
        assertTrue(e4.getMessage().contains("q_proj.lora_B.weight") && e4.getMessage().contains("lacks"), e4.getMessage());

        // a truncated safetensors file
        Path cut = tmp.resolve("cut");
        Files.createDirectories(cut);
        Files.copy(dir.resolve("adapter_config.json"), cut.resolve("adapter_config.json"));
        byte[] bytes = Files.readAllBytes(dir.resolve("adapter_model.safetensors"));
        Files.write(cut.resolve("adapter_model.safetensors"), Arrays.copyOf(bytes, bytes.length - 10));
        IllegalArgumentException e5 = assertThrows(IllegalArgumentException.class, () -> PeftModel.load(new ToyModel(1, false, 4), cut));
        assertTrue(e5.getMessage().contains("adapter_model.safetensors"), e5.getMessage());

        // unknown peft_type
        Path vera = tmp.resolve("vera");
        Files.createDirectories(vera);
        Files.writeString(vera.resolve("adapter_config.json"), "{\"peft_type\": \"VERA\"}");
        IllegalArgumentException e6 = assertThrows(IllegalArgumentException.class, () -> PeftModel.load(new ToyModel(1, false, 4), vera));
        assertTrue(e6.getMessage().contains("VERA") && e6.getMessage().contains("LORA"), e6.getMessage());

        // no folder content
        IllegalArgumentException e7 = assertThrows(IllegalArgumentException.class,
                () -> PeftModel.load(new ToyModel(1, false, 4), tmp.resolve("nothing-here")));
        assertTrue(e7.getMessage().contains("adapter_config.json"), e7.getMessage());
    }

    /** Every parameter's trainable flag, by name, and whether any module is an adapter layer or wrapper. */
    private static Map<String, Boolean> flags(org.peft4j.core.nn.Module m) {
        Map<String, Boolean> out = new LinkedHashMap<>();
        m.namedParameters().forEach((k, p) -> out.put(k, p.isTrainable()));
        return out;
    }

    private static void assertPlain(ToyModel m, Map<String, Boolean> flagsBefore, INDArray outBefore, INDArray ids, String what) {
        for (org.peft4j.core.nn.Module mod : m.namedModules().values()) {
            assertFalse(mod instanceof LoraLayer || mod instanceof ModulesToSaveWrapper, what + ": left over " + mod);
        }
        assertEquals(flagsBefore, flags(m), what + ": trainable flags");
        assertExactlyEqual(outBefore, run(m, ids), what + ": outputs");
    }

    @Test
    void failedApplyOrLoadLeavesTheModelAsItWasAndARetryWorks() throws IOException {
        ToyModel src = new ToyModel(1, false, 4);
        src.eval();
        PeftModel good = Peft.apply(src, LoraConfig.builder().r(2).targetModules("q_proj", "embed_tokens")
                .modulesToSave("classifier").seed(3).build());
        LoraModelTest.randomizeAdapters(good, 5);
        Path dir = tmp.resolve("good");
        good.save(dir);
        Path cut = tmp.resolve("cut");
        Files.createDirectories(cut);
        Files.copy(dir.resolve("adapter_config.json"), cut.resolve("adapter_config.json"));
        byte[] bytes = Files.readAllBytes(dir.resolve("adapter_model.safetensors"));
        Files.write(cut.resolve("adapter_model.safetensors"), Arrays.copyOf(bytes, bytes.length - 10));

        ToyModel base = new ToyModel(1, false, 4);
        base.eval();
        INDArray ids = ToyModel.ids(8, 2, 3);
        INDArray out = run(base, ids);
        Map<String, Boolean> before = flags(base);
        assertTrue(before.values().stream().allMatch(b -> b), "a fresh model trains in full");

        // a truncated weights file: clear error, and the model is untouched (not frozen, nothing wrapped)
        assertThrows(IllegalArgumentException.class, () -> PeftModel.load(base, cut));
        assertPlain(base, before, out, ids, "after a failed load");
        // a target list that matches nothing, and modules_to_save that match nothing (after LoRA was injected)
        assertThrows(IllegalArgumentException.class, () -> Peft.apply(base, LoraConfig.builder().targetModules("nope").build()));
        assertPlain(base, before, out, ids, "after a failed apply");
        assertThrows(IllegalArgumentException.class,
                () -> Peft.apply(base, LoraConfig.builder().targetModules("q_proj").modulesToSave("no_head").build()));
        assertPlain(base, before, out, ids, "after a failed apply with modules_to_save");

        // the retry with the good folder works and gives the saved adapter's outputs
        PeftModel pm = PeftModel.load(base, dir);
        INDArray adapted = run(base, ids);
        assertExactlyEqual(run(src, ids), adapted, "retried load");

        // a failed loadAdapter into an existing PeftModel leaves it as it was; the same name then loads
        Map<String, Boolean> pmFlags = flags(base);
        assertThrows(IllegalArgumentException.class, () -> pm.loadAdapter(cut, "second"));
        assertEquals(List.of("default"), pm.adapterNames());
        assertEquals(pmFlags, flags(base));
        for (org.peft4j.core.nn.Module mod : base.namedModules().values()) {
            if (mod instanceof LoraLayer l) {
                assertEquals(java.util.Set.of("default"), l.adapterNames(), "no trace of the failed adapter");
            }
            if (mod instanceof ModulesToSaveWrapper w) {
                assertEquals(java.util.Set.of("default"), w.adapterNames(), "no trace of the failed adapter");
            }
        }
        assertExactlyEqual(adapted, run(base, ids), "outputs after a failed loadAdapter");
        pm.loadAdapter(dir, "second");
        pm.setAdapter("second");
        assertExactlyEqual(adapted, run(base, ids), "the same adapter loaded under another name");
        // addAdapter whose modules_to_save match nothing: rolled back too
        assertThrows(IllegalArgumentException.class,
                () -> pm.addAdapter("third", LoraConfig.builder().targetModules("v_proj").modulesToSave("no_head").build()));
        assertEquals(List.of("default", "second"), pm.adapterNames());
        assertFalse(base.get("model.layers.0.self_attn.v_proj") instanceof LoraLayer, "v_proj unwrapped again");
        pm.addAdapter("third", LoraConfig.builder().targetModules("v_proj").build());
        assertTrue(base.get("model.layers.0.self_attn.v_proj") instanceof LoraLayer);
    }

    @Test
    void adapterNamesMustBeSafeFolderNames() {
        ToyModel m = new ToyModel(1, false, 5);
        LoraConfig c = LoraConfig.builder().targetModules("q_proj").build();
        for (String bad : List.of("", "a/b", "..", "../x", "a\\b", "x.y", "__base__")) {
            assertThrows(IllegalArgumentException.class, () -> Peft.apply(new ToyModel(1, false, 5), c, bad), "'" + bad + "'");
        }
        PeftModel pm = Peft.apply(m, c);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> pm.addAdapter("../evil", c));
        assertTrue(e.getMessage().contains("../evil"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> pm.addAdapter("default", c), "duplicate name");
    }
}
