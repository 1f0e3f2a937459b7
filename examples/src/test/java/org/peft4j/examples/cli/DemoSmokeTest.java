package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code demo} and {@code compare} end to end on the real MiniLM with a tiny budget (hidden options). */
class DemoSmokeTest {
    @Test
    void demoRunsEndToEnd(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("demo");
        CliTestSupport.Run r = CliTestSupport.cli("demo", "--steps", "2", "--train-reviews", "32", "--test-reviews", "16",
                "--max-len", "32", "--out", out.toString());
        assertEquals(0, r.code(), r.toString());
        String o = r.out();
        assertTrue(o.contains("trainable params: 74,498 || all params: 22,640,644 || trainable%: 0.3290"), o);
        assertTrue(o.contains("test accuracy before fine-tuning:"), o);
        assertTrue(o.contains("test accuracy after fine-tuning:"), o);
        assertTrue(o.contains("step 2/2"), "progress line: " + o);
        assertTrue(o.contains("training wall time:"), o);
        assertTrue(o.contains("identical predictions on 16/16 test reviews"), o);
        assertTrue(o.contains("adapter saved to " + out.resolve("adapter")), o);
        assertEquals(List.of("adapter_config.json", "adapter_model.safetensors", Classification.TASK_FILE),
                CliTestSupport.fileNames(out.resolve("adapter")));
        long predictions = o.lines().filter(l -> l.startsWith("  positive") || l.startsWith("  negative")).count();
        assertEquals(6, predictions, "3 written sentences + 3 test reviews: " + o);

        // the saved adapter works through predict without naming the model (base_model_name_or_path)
        CliTestSupport.Run p = CliTestSupport.cli("predict", "--adapter", out.resolve("adapter").toString(), "--text", "Great film!");
        assertEquals(0, p.code(), p.toString());
        assertTrue(p.out().startsWith("positive") || p.out().startsWith("negative"), p.out());
    }

    @Test
    void compareWritesFourResults(@TempDir Path tmp) throws Exception {
        Path json = tmp.resolve("compare.json");
        CliTestSupport.Run r = CliTestSupport.cli("compare", "--steps", "1", "--train-limit", "16", "--test-limit", "8",
                "--max-len", "16", "--out", json.toString());
        assertEquals(0, r.code(), r.toString());
        JsonNode n = CliTestSupport.JSON.readTree(json.toFile());
        JsonNode results = n.get("results");
        assertEquals(4, results.size());
        assertEquals("head-only", results.get(0).get("method").asText());
        assertEquals(770, results.get(0).get("trainable_params").asLong(), "head only: 384 x 2 + 2");
        assertEquals(74_498, results.get(1).get("trainable_params").asLong());
        // full fine-tuning: the encoder and the head
        assertEquals(22_565_376 + 770, results.get(2).get("trainable_params").asLong());
        // QLoRA: the same LoRA factors and head over an NF4 encoder
        assertEquals("qlora", results.get(3).get("method").asText());
        assertEquals(74_498, results.get(3).get("trainable_params").asLong());
        assertTrue(results.get(3).get("all_params").asLong() < results.get(1).get("all_params").asLong(),
                "quantized weights are not counted as fp32 parameters: " + results);
        for (JsonNode res : results) {
            double acc = res.get("test_accuracy").asDouble();
            assertTrue(acc >= 0 && acc <= 1, res.toString());
            assertEquals(1, res.get("steps").asInt());
        }
        assertTrue(n.get("targets").has("lora_minus_head_points"), n.toString());
        assertTrue(r.out().contains("targets:"), r.out());
        assertTrue(n.get("targets").has("lora_minus_qlora_points"), n.toString());
    }

    /** A list of learning rates is a sweep: each is scored on validation, the best one alone on test. */
    @Test
    void compareChoosesTheLearningRateOnValidation(@TempDir Path tmp) throws Exception {
        Path json = tmp.resolve("sweep.json");
        CliTestSupport.Run r = CliTestSupport.cli("compare", "--methods", "head-only", "--lr-head", "1e-4,5e-1", "--steps", "2",
                "--train-limit", "32", "--test-limit", "24", "--max-len", "16", "--out", json.toString());
        assertEquals(0, r.code(), r.toString());
        JsonNode res = CliTestSupport.JSON.readTree(json.toFile()).get("results").get(0);
        JsonNode tried = res.get("learning_rates_tried");
        assertEquals(2, tried.size(), res.toString());
        assertEquals(1e-4, tried.get(0).get("learning_rate").asDouble(), 0);
        assertEquals(5e-1, tried.get(1).get("learning_rate").asDouble(), 0);
        // the chosen rate is the first one with the highest validation accuracy
        int bestIndex = tried.get(1).get("validation_accuracy").asDouble() > tried.get(0).get("validation_accuracy").asDouble() ? 1 : 0;
        assertEquals(tried.get(bestIndex).get("learning_rate").asDouble(), res.get("learning_rate").asDouble(), 0);
        assertEquals(tried.get(bestIndex).get("validation_accuracy").asDouble(), res.get("validation_accuracy").asDouble(), 0);
        assertEquals(1, r.out().lines().filter(l -> l.contains("test accuracy")).count(), "test evaluated once: " + r.out());
    }

    /** Prompt tuning's length and TEXT init from the command line (PEFT's prompt_tuning_init TEXT). */
    @Test
    void comparePromptTuningTakesLengthAndTextInit(@TempDir Path tmp) throws Exception {
        Path json = tmp.resolve("prompt.json");
        CliTestSupport.Run r = CliTestSupport.cli("compare", "--methods", "prompt_tuning", "--virtual-tokens", "8",
                "--prompt-init-text", "Is this review positive or negative?", "--steps", "1", "--train-limit", "16",
                "--test-limit", "8", "--max-len", "16", "--out", json.toString());
        assertEquals(0, r.code(), r.toString());
        JsonNode n = CliTestSupport.JSON.readTree(json.toFile());
        // 8 x 384 prompt vectors + the 384 x 2 + 2 head
        assertEquals(8 * 384 + 770, n.get("results").get(0).get("trainable_params").asLong(), n.toString());
        assertTrue(n.get("settings").get("prompt").asText().contains("8 virtual tokens, TEXT init"), n.toString());
    }

    @Test
    void compareRejectsABadLearningRateList() throws Exception {
        CliTestSupport.Run r = CliTestSupport.cli("compare", "--methods", "lora", "--lr-lora", "1e-3,fast");
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains("--lr-lora") && r.err().contains("'fast'"), r.err());
    }

    /** The committed example config runs (with a tiny budget set from the command line). */
    @Test
    void committedConfigTrains(@TempDir Path tmp) throws Exception {
        Path config = Path.of("configs", "imdb-lora.yaml");
        CliTestSupport.Run r = CliTestSupport.cli("train", config.toString(), "--output-dir", tmp.toString(),
                "--set", "training.max_steps=2", "--set", "data.train_limit=32", "--set", "data.eval_limit=16",
                "--set", "data.max_length=32");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("trainable params: 74,498"), r.out());
        JsonNode resolved = new com.fasterxml.jackson.dataformat.yaml.YAMLMapper().readTree(tmp.resolve("resolved_config.yaml").toFile());
        assertEquals(2, resolved.at("/training/max_steps").asInt());
        assertEquals(42, resolved.at("/training/seed").asInt());
        assertEquals("imdb:train", resolved.at("/data/train").asText(), "the split is made explicit");
        assertEquals(16, resolved.at("/provenance/eval_examples").asInt());
        JsonNode results = CliTestSupport.JSON.readTree(tmp.resolve("eval_results.json").toFile());
        assertTrue(results.get("accuracy").isNumber(), results.toString());
        assertEquals(List.of("adapter_config.json", "adapter_model.safetensors", Classification.TASK_FILE),
                CliTestSupport.fileNames(tmp.resolve("adapter")));
    }
}
