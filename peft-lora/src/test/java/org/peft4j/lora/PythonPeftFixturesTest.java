package org.peft4j.lora;

import org.peft4j.core.testing.RepoFixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.nn.Module;
import org.peft4j.core.peft.PeftModel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Adapter folders in PEFT's layout, written by scripts/reference/lora_reference.py (an independent
 * PyTorch implementation of PEFT's LoRA math, with the key set PEFT 0.13 writes in
 * adapter_config.json), loaded by peft4j onto the repository's tiny BERT / GPT-2 / LLaMA checkpoints:
 * the outputs must match the script's float64 reference to 1e-4 (max abs; decoders compared where
 * attention_mask = 1, as padded rows are meaningless).
 */
class PythonPeftFixturesTest {

    @ParameterizedTest
    @ValueSource(strings = {"bert-qv", "bert-dora-rslora", "bert-embedding-bias", "gpt2-conv1d", "llama-layers",
            "llama-dora-lora-only", "mistral-modules-to-save"})
    void peftLayoutFolderGivesTheReferenceOutputs(String name) throws IOException {
        Path dir = Fixtures.lora(name);
        JsonNode meta = new ObjectMapper().readTree(dir.resolve("case.json").toFile());
        String family = meta.get("family").asText();
        Module base = RepoFixtures.loadBase(family, meta.get("base_fixture").asText());
        Map<String, INDArray> io = SafeTensors.load(dir.resolve("expected.safetensors"));
        INDArray ids = io.get("input_ids");
        INDArray mask = io.get("attention_mask");
        INDArray before = RepoFixtures.output(base, ids, mask, io.get("token_type_ids"));

        PeftModel pm = PeftModel.load(base, dir.resolve("adapter"));
        INDArray got = RepoFixtures.output(base, ids, mask, io.get("token_type_ids"));
        INDArray expected = io.get("output");
        INDArray diff = got.castTo(DataType.DOUBLE).sub(expected.castTo(DataType.DOUBLE));
        if (!family.equals("bert")) {
            long[] s = diff.shape();
            diff.muli(mask.castTo(DataType.DOUBLE).reshape(s[0], s[1], 1).broadcast(s));
        }
        double err = diff.amaxNumber().doubleValue();
        double change = TestUtil.maxAbsDiff(before, expected);
        System.out.printf("PEFT-layout fixture %s: max |peft4j - reference| = %.3e (adapter changes the output by %.3f)%n",
                name, err, change);
        assertTrue(change > 0.5, name + ": the adapter must change the output (changed by " + change + ")");
        assertTrue(err <= 1e-4, name + ": max |peft4j - reference| = " + err + " > 1e-4");
        // merged weights give the same outputs as the unmerged adapter
        pm.merge();
        INDArray merged = RepoFixtures.output(base, ids, mask, io.get("token_type_ids"));
        INDArray mdiff = merged.castTo(DataType.DOUBLE).sub(got.castTo(DataType.DOUBLE));
        if (!family.equals("bert")) {
            long[] s = mdiff.shape();
            mdiff.muli(mask.castTo(DataType.DOUBLE).reshape(s[0], s[1], 1).broadcast(s));
        }
        if (!name.equals("gpt2-conv1d")) { // GPT-2 ties lm_head to wte: merging an embedding adapter changes the head too
            assertTrue(mdiff.amaxNumber().doubleValue() <= 1e-4, name + ": merged differs by " + mdiff.amaxNumber());
        }
    }
}
