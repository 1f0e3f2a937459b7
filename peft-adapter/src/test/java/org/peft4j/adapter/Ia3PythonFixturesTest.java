package org.peft4j.adapter;

import org.peft4j.core.testing.RepoFixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.nn.Module;
import org.peft4j.core.peft.PeftModel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * PEFT-layout IA3 folders written by scripts/reference/ia3_reference.py (plain-PyTorch IA3 math,
 * float64) for the repository's tiny BERT / GPT-2 / LLaMA / Mistral checkpoints: peft4j's outputs
 * match to 1e-4 (max abs; decoders where attention_mask = 1); merged outputs equal the unmerged
 * ones to 1e-4 and unmerging restores every base tensor bit for bit.
 */
class Ia3PythonFixturesTest {

    @ParameterizedTest
    @ValueSource(strings = {"bert-default", "bert-regex", "gpt2-default", "llama-default", "qwen2-default", "mistral-mlp"})
    void peftLayoutIa3FolderGivesTheReferenceOutputs(String name) throws IOException {
        Path dir = Fixtures.fixture("ia3").resolve(name);
        JsonNode meta = new ObjectMapper().readTree(dir.resolve("case.json").toFile());
        String family = meta.get("family").asText();
        Module base = RepoFixtures.loadBase(family, meta.get("base_fixture").asText());
        Map<String, INDArray> io = SafeTensors.load(dir.resolve("expected.safetensors"));
        INDArray ids = io.get("input_ids");
        INDArray mask = io.get("attention_mask");
        INDArray types = io.get("token_type_ids");
        INDArray cmpMask = family.equals("bert") ? null : mask;
        INDArray before = RepoFixtures.output(base, ids, mask, types);
        Map<String, INDArray> baseState = new HashMap<>();
        base.stateDict().forEach((k, v) -> baseState.put(k, v.dup()));

        PeftModel pm = PeftModel.load(base, dir.resolve("adapter"));
        // which targets became feed-forward (input-scaling) layers: as the script decided
        TreeSet<String> ff = new TreeSet<>();
        base.namedModules().forEach((k, m) -> {
            if (m instanceof Ia3Layer l && l.isFeedforward()) {
                ff.add(k);
            }
        });
        TreeSet<String> expectedFf = new TreeSet<>();
        meta.get("ia3_feedforward").forEach(n -> expectedFf.add(n.asText()));
        assertEquals(expectedFf, ff, name + ": feed-forward targets");

        INDArray got = RepoFixtures.output(base, ids, mask, types);
        INDArray expected = io.get("output");
        double err = Fixtures.maxAbsDiff(got, expected, cmpMask);
        double change = Fixtures.maxAbsDiff(before, expected, cmpMask);
        System.out.printf("IA3 fixture %s: max |peft4j - reference| = %.3e (adapter changes the output by %.3f)%n", name, err, change);
        assertTrue(change > 0.5, name + ": the adapter must change the output (changed by " + change + ")");
        assertTrue(err <= 1e-4, name + ": max |peft4j - reference| = " + err + " > 1e-4");

        pm.merge();
        INDArray merged = RepoFixtures.output(base, ids, mask, types);
        double mdiff = Fixtures.maxAbsDiff(merged, got, cmpMask);
        assertTrue(mdiff <= 1e-4, name + ": merged differs from unmerged by " + mdiff);
        pm.unmerge();
        Module restored = pm.unload();
        Map<String, INDArray> after = restored.stateDict();
        assertEquals(baseState.keySet(), after.keySet());
        for (Map.Entry<String, INDArray> e : baseState.entrySet()) {
            assertEquals(e.getValue(), after.get(e.getKey()), name + ": unmerge must restore " + e.getKey() + " exactly");
        }
    }
}
