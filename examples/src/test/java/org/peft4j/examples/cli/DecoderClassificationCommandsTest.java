package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code task: sequence_classification} on decoders (GPT-2, LLaMA-GQA): {@code train} with LoRA and
 * each prompt method (PEFT's keys) puts a new {@code score} head on the causal LM, saves it with the
 * adapter ({@code modules_to_save} gets {@code score}, as PEFT's SEQ_CLS), then {@code eval},
 * {@code predict} and {@code logits} with {@code --adapter} reopen the classifier (the same
 * accuracy as the trainer's evaluation), {@code generate} refuses a classification adapter, and
 * {@code merge} of the LoRA run writes a {@code …ForSequenceClassification} folder that
 * {@code predict --model} reads without an adapter.
 */
class DecoderClassificationCommandsTest {
    @TempDir
    static Path tmp;
    static Path train;
    static Path eval;

    @BeforeAll
    static void data() throws Exception {
        train = tmp.resolve("train.jsonl");
        eval = tmp.resolve("eval.jsonl");
        Files.write(train, AdapterCommandsTest.tinyData(32, 1));
        Files.write(eval, AdapterCommandsTest.tinyData(16, 2));
    }

    static Path model(String fixture) throws Exception {
        Path dir = tmp.resolve("model-" + fixture);
        if (!Files.isDirectory(dir)) {
            CliTestSupport.copyModel("decoders/" + fixture, dir);
            CliTestSupport.writeWordTokenizer(dir, fixture.equals("gpt2") ? 64 : 96, false);
        }
        return dir;
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "gpt2      | lora-gpt2    | {peft_type: LORA, r: 4, lora_alpha: 8, target_modules: [c_attn]}",
            "gpt2      | prompt       | {peft_type: PROMPT_TUNING, num_virtual_tokens: 3}",
            "gpt2      | prefix       | {peft_type: PREFIX_TUNING, num_virtual_tokens: 3}",
            "llama-gqa | lora-llama   | {peft_type: LORA, r: 4, lora_alpha: 8, target_modules: [q_proj, v_proj]}",
            "llama-gqa | ptuning      | {peft_type: P_TUNING, num_virtual_tokens: 3, encoder_reparameterization_type: MLP, encoder_hidden_size: 16}",
            "llama-gqa | prefix-proj  | {peft_type: PREFIX_TUNING, num_virtual_tokens: 3, prefix_projection: true, encoder_hidden_size: 16}"})
    void trainEvalPredictLogitsOnADecoderClassifier(String fixture, String name, String peft) throws Exception {
        Path base = model(fixture);
        Path out = tmp.resolve("run-" + name);
        Path cfg = tmp.resolve(name + ".yaml");
        Files.writeString(cfg, """
                model: %s
                task: sequence_classification
                data: {train: %s, eval: %s, labels: [neg, pos], max_length: 12}
                peft: %s
                training: {epochs: 2, batch_size: 8, learning_rate: 0.02, seed: 7, log_interval: 2}
                """.formatted(base, train, eval, peft));
        CliTestSupport.Run r = CliTestSupport.cli("train", cfg.toString(), "--output-dir", out.toString());
        assertEquals(0, r.code(), r.toString());
        Path adapter = out.resolve("adapter");
        Map<String, INDArray> saved = SafeTensors.load(adapter.resolve("adapter_model.safetensors"));
        assertTrue(saved.containsKey("base_model.model.score.weight"), saved.keySet().toString());
        assertEquals(2, saved.get("base_model.model.score.weight").size(0));
        JsonNode task = CliTestSupport.JSON.readTree(adapter.resolve("peft4j_task.json").toFile());
        assertEquals("last_token", task.get("pooling").asText());
        int pad = fixture.equals("gpt2") ? 63 : 2;   // no pad token: the config's eos_token_id
        assertEquals(pad, task.get("pad_token_id").asInt());
        JsonNode acfg = CliTestSupport.JSON.readTree(adapter.resolve("adapter_config.json").toFile());
        assertEquals("SEQ_CLS", acfg.get("task_type").asText());
        assertTrue(acfg.get("modules_to_save").toString().contains("score"), acfg.toString());

        Path json = tmp.resolve(name + "-eval.json");
        CliTestSupport.Run e = CliTestSupport.cli("eval", "--model", base.toString(), "--adapter", adapter.toString(),
                "--data", eval.toString(), "--labels", "neg,pos", "--out", json.toString());
        assertEquals(0, e.code(), e.toString());
        double trainerAcc = CliTestSupport.JSON.readTree(out.resolve("eval_results.json").toFile()).get("accuracy").asDouble();
        assertEquals(trainerAcc, CliTestSupport.JSON.readTree(json.toFile()).get("accuracy").asDouble(), 1e-12,
                name + ": the reopened classifier classifies as the trained one");

        CliTestSupport.Run p = CliTestSupport.cli("predict", "--model", base.toString(), "--adapter", adapter.toString(),
                "--text", "w5 w6 w7", "w21 w22");
        assertEquals(0, p.code(), p.toString());
        assertEquals(2, p.out().lines().filter(l -> l.startsWith("pos") || l.startsWith("neg")).count(), p.out());

        CliTestSupport.Run l = CliTestSupport.cli("logits", "--model", base.toString(), "--adapter", adapter.toString(),
                "--ids", "5,6,7");
        assertEquals(0, l.code(), l.toString());
        assertEquals("[1,2]", CliTestSupport.JSON.readTree(l.out()).get("shape").toString().replace(" ", ""));

        CliTestSupport.Run g = CliTestSupport.cli("generate", "--model", base.toString(), "--adapter", adapter.toString(),
                "--prompt-ids", "5,6");
        assertEquals(2, g.code(), g.toString());
        assertTrue(g.err().contains("sequence-classification adapter"), g.err());

        if (name.startsWith("lora")) {
            Path merged = tmp.resolve("merged-" + name);
            CliTestSupport.Run m = CliTestSupport.cli("merge", "--model", base.toString(), "--adapter", adapter.toString(),
                    "--out", merged.toString());
            assertEquals(0, m.code(), m.toString());
            JsonNode mc = CliTestSupport.JSON.readTree(merged.resolve("config.json").toFile());
            assertTrue(mc.get("architectures").get(0).asText().endsWith("ForSequenceClassification"), mc.toString());
            assertEquals(pad, mc.get("pad_token_id").asInt());
            CliTestSupport.Run pm = CliTestSupport.cli("predict", "--model", merged.toString(), "--text", "w5 w6 w7", "w21 w22");
            assertEquals(0, pm.code(), pm.toString());
            assertEquals(p.out(), pm.out(), "the merged classifier predicts as the adapter");
        }
    }

    @Test
    void causalLmCommandsRefuseAClassifierFolder() throws Exception {
        Path dir = tmp.resolve("seqcls-folder");
        CliTestSupport.copyModel("decoders-seqcls/gpt2", dir);
        CliTestSupport.Run g = CliTestSupport.cli("generate", "--model", dir.toString(), "--prompt-ids", "5,6");
        assertEquals(2, g.code(), g.toString());
        assertTrue(g.err().contains("GPT2ForSequenceClassification"), g.err());
        CliTestSupport.Run l = CliTestSupport.cli("logits", "--model", dir.toString(), "--ids", "5,6,7");
        assertEquals(0, l.code(), l.toString());
        assertEquals("[1,3]", CliTestSupport.JSON.readTree(l.out()).get("shape").toString().replace(" ", ""));
    }
}
