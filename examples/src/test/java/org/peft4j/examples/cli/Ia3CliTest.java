package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.io.SafeTensors;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * IA3 from the CLI on the tiny fixtures: {@code train CONFIG.yaml} with PEFT's IA3 keys, then
 * {@code eval}, {@code predict}, {@code merge} (the merged classifier predicts as base + adapter)
 * and, on GPT-2, {@code logits --adapter}.
 */
class Ia3CliTest {
    @TempDir
    Path tmp;

    @Test
    void trainEvalPredictMergeWithIa3() throws Exception {
        Path bert = CliTestSupport.copyModel("bert-tiny", tmp.resolve("bert-tiny"));
        CliTestSupport.writeWordTokenizer(bert, 50, true);
        Path train = tmp.resolve("train.jsonl");
        Path eval = tmp.resolve("eval.jsonl");
        Files.write(train, AdapterCommandsTest.tinyData(48, 1));
        Files.write(eval, AdapterCommandsTest.tinyData(16, 2));
        Path run = tmp.resolve("run");
        Path cfg = tmp.resolve("ia3.yaml");
        Files.writeString(cfg, """
                model: %s
                task: sequence_classification
                data: {train: %s, eval: %s, labels: [neg, pos], max_length: 16}
                peft:
                  peft_type: IA3
                  target_modules: [key, value, intermediate.dense, output.dense]
                  feedforward_modules: [intermediate.dense]
                  modules_to_save: [classifier]
                training: {epochs: 2, batch_size: 8, learning_rate: 0.05, warmup_ratio: 0.0, log_interval: 2, seed: 7}
                """.formatted(bert, train, eval));
        CliTestSupport.Run r = CliTestSupport.cli("train", cfg.toString(), "--output-dir", run.toString());
        assertEquals(0, r.code(), r.toString());
        Path adapter = run.resolve("adapter");
        JsonNode ac = CliTestSupport.JSON.readTree(adapter.resolve("adapter_config.json").toFile());
        assertEquals("IA3", ac.get("peft_type").asText());
        assertEquals("SEQ_CLS", ac.get("task_type").asText());
        assertTrue(SafeTensors.load(adapter.resolve("adapter_model.safetensors"))
                .containsKey("base_model.model.bert.encoder.layer.1.intermediate.dense.ia3_l"));

        CliTestSupport.Run ev = CliTestSupport.cli("eval", "--adapter", adapter.toString(), "--data", eval.toString(), "--labels", "neg,pos");
        assertEquals(0, ev.code(), ev.toString());
        assertTrue(ev.out().contains("accuracy"), ev.out());

        Path merged = tmp.resolve("merged");
        CliTestSupport.Run m = CliTestSupport.cli("merge", "--adapter", adapter.toString(), "--out", merged.toString());
        assertEquals(0, m.code(), m.toString());
        CliTestSupport.Run viaAdapter = CliTestSupport.cli("predict", "--adapter", adapter.toString(), "--text", "w5 w30 w8");
        CliTestSupport.Run viaMerged = CliTestSupport.cli("predict", "--model", merged.toString(), "--text", "w5 w30 w8");
        assertEquals(0, viaAdapter.code(), viaAdapter.toString());
        assertEquals(0, viaMerged.code(), viaMerged.toString());
        assertEquals(viaAdapter.out(), viaMerged.out());
    }

    @Test
    void causalLmIa3LogitsWithAdapter() throws Exception {
        Path gpt2 = CliTestSupport.copyModel("decoders/gpt2", tmp.resolve("gpt2"));
        CliTestSupport.writeWordTokenizer(gpt2, 64, false);
        Path text = tmp.resolve("lm.txt");
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            lines.add("w" + (1 + i) + " w" + (2 + i) + " w" + (3 + i) + " w" + (4 + i) + " w" + (5 + i));
        }
        Files.write(text, lines);
        Path out = tmp.resolve("lm-run");
        Path cfg = tmp.resolve("lm.yaml");
        Files.writeString(cfg, """
                model: %s
                task: causal_lm
                data: {train: %s, eval: %s, max_length: 16}
                peft: {peft_type: IA3}
                training: {max_steps: 4, batch_size: 4, learning_rate: 0.1, seed: 3, log_interval: 1}
                """.formatted(gpt2, text, text));
        CliTestSupport.Run r = CliTestSupport.cli("train", cfg.toString(), "--output-dir", out.toString());
        assertEquals(0, r.code(), r.toString());
        Path adapter = out.resolve("adapter");
        JsonNode ac = CliTestSupport.JSON.readTree(adapter.resolve("adapter_config.json").toFile());
        assertTrue(ac.get("fan_in_fan_out").asBoolean(), "GPT-2 defaults saved with fan_in_fan_out: " + ac);
        String ids = "5,6,7,8";
        CliTestSupport.Run base = CliTestSupport.cli("logits", "--model", gpt2.toString(), "--ids", ids);
        CliTestSupport.Run adapted = CliTestSupport.cli("logits", "--model", gpt2.toString(), "--adapter", adapter.toString(), "--ids", ids);
        assertEquals(0, adapted.code(), adapted.toString());
        float[] b = CliTestSupport.values(CliTestSupport.JSON.readTree(base.out()), 1, 64);
        float[] a = CliTestSupport.values(CliTestSupport.JSON.readTree(adapted.out()), 1, 64);
        double change = 0;
        for (int i = 0; i < 64; i++) {
            change = Math.max(change, Math.abs(a[i] - b[i]));
        }
        assertTrue(change > 1e-4, "the trained IA3 adapter changes the logits: " + change);
    }
}
