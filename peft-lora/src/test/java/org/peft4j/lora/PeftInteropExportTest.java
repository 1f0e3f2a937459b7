package org.peft4j.lora;

import org.peft4j.core.testing.RepoFixtures;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.nn.Module;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.peft.TaskType;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Interop (b): peft4j saves adapters for the repository's tiny BERT / GPT-2 / LLaMA checkpoints
 * into {@code peft-lora/target/interop/<case>/} together with the inputs and its own outputs
 * ({@code io.safetensors}, {@code case.json}); {@code scripts/reference/lora_reference.py check}
 * then reads the folders the way PEFT does, recomputes the outputs independently and compares
 * (max abs ≤ 1e-4). The Python half runs when {@code /usr/bin/python3} can import torch
 * (Debian's python3-torch) and is skipped otherwise; the command is
 * {@code /usr/bin/python3 scripts/reference/lora_reference.py check peft-lora/target/interop}.
 */
class PeftInteropExportTest {

    private record Case(String name, String family, String fixture, Map<String, LoraConfig> adapters) {
    }

    private static List<Case> cases() {
        Map<String, LoraConfig> bert = new LinkedHashMap<>();
        bert.put("default", LoraConfig.builder().r(4).loraAlpha(8).targetModules("query", "value", "word_embeddings")
                .bias("all").taskType(TaskType.FEATURE_EXTRACTION).baseModelNameOrPath("bert-tiny").seed(1).build());
        bert.put("dora", LoraConfig.builder().r(4).loraAlpha(6).useDora(true).useRslora(true)
                .targetModulesRegex(".*\\.(key|dense)").rankPattern(Map.of("output\\.dense", 2)).seed(2).build());
        Map<String, LoraConfig> gpt2 = new LinkedHashMap<>();
        gpt2.put("default", LoraConfig.builder().r(4).loraAlpha(16).fanInFanOut(true).targetModules("c_attn", "c_fc", "wte")
                .taskType(TaskType.CAUSAL_LM).seed(3).build());
        gpt2.put("gauss", LoraConfig.builder().r(2).loraAlpha(2).fanInFanOut(true).initLoraWeights("gaussian")
                .targetModules("c_proj").bias("lora_only").seed(4).build());
        Map<String, LoraConfig> llama = new LinkedHashMap<>();
        llama.put("default", LoraConfig.builder().r(2).loraAlpha(4).allLinear().taskType(TaskType.CAUSAL_LM).seed(5).build());
        llama.put("layer0", LoraConfig.builder().r(2).loraAlpha(8).targetModules("k_proj", "o_proj", "up_proj")
                .layersToTransform(0).layersPattern("layers").seed(7).build());
        llama.put("dora", LoraConfig.builder().r(3).loraAlpha(3).useDora(true).targetModules("q_proj", "v_proj", "down_proj")
                .alphaPattern(Map.of("down_proj", 9)).seed(6).build());
        Map<String, LoraConfig> mistral = new LinkedHashMap<>();
        mistral.put("default", LoraConfig.builder().r(2).targetModules("gate_proj", "embed_tokens").modulesToSave("lm_head")
                .taskType(TaskType.CAUSAL_LM).seed(8).build());
        return List.of(new Case("bert", "bert", "bert-tiny", bert), new Case("gpt2", "gpt2", "decoders/gpt2", gpt2),
                new Case("llama", "llama", "decoders/llama-gqa", llama),
                new Case("mistral", "llama", "decoders/mistral", mistral));
    }

    @Test
    void savedFoldersAreCheckedByThePythonReference() throws Exception {
        Path root = RepoFixtures.repoRoot().resolve("peft-lora/target/interop");
        AtomicFiles.deleteRecursively(root);
        Files.createDirectories(root);
        for (Case c : cases()) {
            export(root.resolve(c.name()), c);
        }
        List<String> cmd = List.of("/usr/bin/python3", RepoFixtures.repoRoot().resolve("scripts/reference/lora_reference.py").toString(),
                "check", root.toString());
        Assumptions.assumeTrue(RepoFixtures.pythonTorchAvailable(), "/usr/bin/python3 with torch not available; run: " + String.join(" ", cmd));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(5, TimeUnit.MINUTES);
        System.out.print(out);
        Files.writeString(root.resolve("check.log"), out);
        assertEquals(0, p.exitValue(), "Python reference check failed:\n" + out);
    }

    private static void export(Path dir, Case c) throws IOException {
        Module base = RepoFixtures.loadBase(c.family(), c.fixture());
        Map<String, INDArray> ref = SafeTensors.load(RepoFixtures.core(c.fixture()).resolve("reference.safetensors"));
        INDArray ids = ref.get("input_ids");
        INDArray mask = ref.get("attention_mask");
        INDArray types = ref.get("token_type_ids");
        PeftModel pm = null;
        for (Map.Entry<String, LoraConfig> a : c.adapters().entrySet()) {
            if (pm == null) {
                pm = Peft.apply(base, a.getValue(), a.getKey());
            } else {
                pm.addAdapter(a.getKey(), a.getValue());
            }
        }
        LoraModelTest.randomizeAdapters(pm, 31);   // stand-in for training: every factor non-zero
        for (Map.Entry<String, org.peft4j.core.nn.Parameter> e : pm.trainableParameters().entrySet()) {
            if (e.getKey().contains(".modules_to_save.")) {
                e.getValue().value().addi(0.05);   // a trained copy differs from the frozen original
            }
        }
        Map<String, INDArray> io = new LinkedHashMap<>();
        io.put("input_ids", ids);
        io.put("attention_mask", mask);
        if (types != null) {
            io.put("token_type_ids", types);
        }
        Map<String, String> adapters = new LinkedHashMap<>();
        for (String a : pm.adapterNames()) {
            pm.setAdapter(a);
            io.put("output." + a, RepoFixtures.output(base, ids, mask, types));
            adapters.put(a, a.equals(PeftModel.DEFAULT_ADAPTER) ? "adapter" : "adapter/" + a);
        }
        pm.save(dir.resolve("adapter"));
        SafeTensors.write(dir.resolve("io.safetensors"), io);
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("base_fixture", c.fixture());
        meta.put("family", c.family());
        meta.put("adapters", adapters);
        Files.writeString(dir.resolve("case.json"), new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(meta));
    }
}
