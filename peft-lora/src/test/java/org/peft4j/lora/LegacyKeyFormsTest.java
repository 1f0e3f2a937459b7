package org.peft4j.lora;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.peft.ModulesToSaveWrapper;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.NoGrad;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.lora.TestUtil.assertExactlyEqual;

/**
 * The key forms other writers (older PEFT versions, PEFT's in-memory names) use, all read by the
 * core's strict loader through LoRA's key normalisation and the layers' aliases: adapter names
 * inside keys, {@code lora_magnitude_vector.<adapter>.weight} stored as {@code [out, 1]},
 * {@code bias = "lora_only"} biases as {@code <path>.bias}, and {@code modules_to_save} copies as
 * {@code <path>.modules_to_save[.<adapter>].<name>}.
 */
class LegacyKeyFormsTest {

    @TempDir
    Path tmp;

    private static INDArray run(ToyModel m, INDArray ids) {
        try (NoGrad ignored = NoGrad.enter()) {
            return m.forward(ids).value().dup();
        }
    }

    @Test
    void everyOlderKeyFormLoadsToTheSameOutputs() throws IOException {
        INDArray ids = ToyModel.ids(3, 2, 5);
        ToyModel m = new ToyModel(1, false, 31);
        m.eval();
        PeftModel pm = Peft.apply(m, LoraConfig.builder().r(2).useDora(true).bias("lora_only").targetModules("q_proj", "up_proj")
                .modulesToSave("classifier").seed(4).build());
        LoraModelTest.randomizeAdapters(pm, 12);
        ((Linear) ((ModulesToSaveWrapper) m.get("classifier")).copyFor("default")).bias().value().addi(0.4);
        ((LoraLinear) m.get("model.layers.0.self_attn.q_proj")).baseLayer().parameters().get(1).value().addi(0.2);
        INDArray expected = run(m, ids);
        Path dir = tmp.resolve("saved");
        pm.save(dir);
        Map<String, INDArray> t = SafeTensors.load(dir.resolve(PeftModel.WEIGHTS_NAME));

        for (String copyForm : new String[]{"modules_to_save.", "modules_to_save.default."}) {
            Map<String, INDArray> old = new LinkedHashMap<>();
            t.forEach((k, v) -> {
                String n = k.replace("lora_B.weight", "lora_B.default.weight")
                        .replace("base_layer.bias", "bias")
                        .replace("classifier.", "classifier." + copyForm);
                if (k.endsWith("lora_magnitude_vector")) {
                    n = k + ".default.weight";
                    v = v.reshape(v.length(), 1);
                }
                old.put(n, v);
            });
            assertEquals(t.size(), old.size(), "one renamed key per saved key");
            Path legacy = tmp.resolve("legacy-" + copyForm.length());
            Files.createDirectories(legacy);
            Files.copy(dir.resolve(PeftModel.CONFIG_NAME), legacy.resolve(PeftModel.CONFIG_NAME));
            SafeTensors.write(legacy.resolve(PeftModel.WEIGHTS_NAME), old);
            ToyModel fresh = new ToyModel(1, false, 31);
            fresh.eval();
            PeftModel.load(fresh, legacy);
            assertExactlyEqual(expected, run(fresh, ids), "outputs from keys " + old.keySet());
        }

        // one tensor under two forms is ambiguous: an error naming the key
        Map<String, INDArray> twice = new LinkedHashMap<>(t);
        twice.put("base_model.model.classifier.modules_to_save.weight", t.get("base_model.model.classifier.weight"));
        Path dup = tmp.resolve("dup");
        Files.createDirectories(dup);
        Files.copy(dir.resolve(PeftModel.CONFIG_NAME), dup.resolve(PeftModel.CONFIG_NAME));
        SafeTensors.write(dup.resolve(PeftModel.WEIGHTS_NAME), twice);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PeftModel.load(new ToyModel(1, false, 31), dup));
        assertTrue(e.getMessage().contains("two tensors map to 'base_model.model.classifier.weight'"), e.getMessage());
    }
}
