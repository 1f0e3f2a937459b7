package org.peft4j.adapter;

import org.peft4j.core.testing.RepoFixtures;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.Rng;

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
 * peft4j saves IA3 adapters (default targets per family, explicit lists, a second named adapter)
 * for the tiny BERT / GPT-2 / LLaMA checkpoints into {@code peft-adapter/target/ia3-interop/},
 * with the inputs and its outputs; {@code scripts/reference/ia3_reference.py check} reads them as
 * PEFT would and recomputes the outputs (max abs ≤ 1e-4). Skipped without /usr/bin/python3 + torch.
 */
class Ia3InteropExportTest {

    private record Case(String name, String family, String fixture, Map<String, Ia3Config> adapters) {
    }

    @Test
    void savedIa3FoldersAreCheckedByThePythonReference() throws Exception {
        Path root = RepoFixtures.repoRoot().resolve("peft-adapter/target/ia3-interop");
        AtomicFiles.deleteRecursively(root);
        Files.createDirectories(root);
        Map<String, Ia3Config> bert = new LinkedHashMap<>();
        bert.put("default", new Ia3Config().seed(1));
        bert.put("qv", new Ia3Config().targetModules("query", "value", "intermediate.dense")
                .feedforwardModules("intermediate.dense").seed(2));
        Map<String, Ia3Config> gpt2 = new LinkedHashMap<>();
        gpt2.put("default", new Ia3Config().seed(3));
        Map<String, Ia3Config> llama = new LinkedHashMap<>();
        llama.put("default", new Ia3Config().seed(4));
        llama.put("mlp", new Ia3Config().targetModules("gate_proj", "up_proj", "o_proj").feedforwardModules("up_proj").seed(5));
        List<Case> cases = List.of(new Case("bert", "bert", "bert-tiny", bert), new Case("gpt2", "gpt2", "decoders/gpt2", gpt2),
                new Case("llama", "llama", "decoders/llama-gqa", llama));
        for (Case c : cases) {
            export(root.resolve(c.name()), c);
        }
        List<String> cmd = List.of("/usr/bin/python3", RepoFixtures.repoRoot().resolve("scripts/reference/ia3_reference.py").toString(),
                "check", root.toString());
        Assumptions.assumeTrue(RepoFixtures.pythonTorchAvailable(), "/usr/bin/python3 with torch not available; run: " + String.join(" ", cmd));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(5, TimeUnit.MINUTES);
        System.out.print(out);
        assertEquals(0, p.exitValue(), "Python IA3 reference check failed:\n" + out);
    }

    private static void export(Path dir, Case c) throws IOException {
        Module base = RepoFixtures.loadBase(c.family(), c.fixture());
        Map<String, INDArray> ref = SafeTensors.load(RepoFixtures.core(c.fixture()).resolve("reference.safetensors"));
        INDArray ids = ref.get("input_ids");
        INDArray mask = ref.get("attention_mask");
        INDArray types = ref.get("token_type_ids");
        PeftModel pm = null;
        for (Map.Entry<String, Ia3Config> a : c.adapters().entrySet()) {
            if (pm == null) {
                pm = Peft.apply(base, a.getValue(), a.getKey());
            } else {
                pm.addAdapter(a.getKey(), a.getValue());
            }
        }
        // stand-in for training: every vector away from 1
        Rng rng = new Rng(77);
        for (String a : pm.adapterNames()) {
            pm.setAdapter(a);
            for (Parameter p : pm.trainableParameters().values()) {
                INDArray v = p.value();
                for (long i = 0; i < v.length(); i++) {
                    v.putScalar(i, 1.0 + 0.4 * rng.nextGaussian());
                }
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
