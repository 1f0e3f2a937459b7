package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The prompt methods through the CLI: {@code train CONFIG.yaml} with PEFT's keys, then
 * {@code logits}, {@code generate}, {@code eval} and {@code predict} with {@code --adapter}.
 */
class PromptCommandsTest {
    @TempDir
    static Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"{peft_type: PROMPT_TUNING, num_virtual_tokens: 3}",
            "{peft_type: P_TUNING, num_virtual_tokens: 3, encoder_reparameterization_type: LSTM, encoder_hidden_size: 8}",
            "{peft_type: PREFIX_TUNING, num_virtual_tokens: 3, prefix_projection: true, encoder_hidden_size: 8}",
            "{peft_type: PROMPT_TUNING, num_virtual_tokens: 3, prompt_tuning_init: TEXT, prompt_tuning_init_text: 'w1 w2'}"})
    void causalLmTrainThenLogitsAndGenerateWithAdapter(String peft) throws Exception {
        String name = peft.substring(peft.indexOf(':') + 2, peft.indexOf(',')) + (peft.contains("TEXT") ? "-text" : "");
        Path gpt2 = CliTestSupport.copyModel("decoders/gpt2", tmp.resolve("gpt2-" + name));
        CliTestSupport.writeWordTokenizer(gpt2, 64, false);
        Path text = tmp.resolve("lm-" + name + ".txt");
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            lines.add("w" + (1 + i) + " w" + (2 + i) + " w" + (3 + i) + " w" + (4 + i) + " w" + (5 + i));
        }
        Files.write(text, lines);
        Path out = tmp.resolve("run-" + name);
        Path cfg = tmp.resolve(name + ".yaml");
        Files.writeString(cfg, """
                model: %s
                task: causal_lm
                data: {train: %s, eval: %s, max_length: 16}
                peft: %s
                training: {max_steps: 4, batch_size: 4, learning_rate: 0.05, seed: 3, log_interval: 1}
                output_dir: %s
                """.formatted(gpt2, text, text, peft, out));
        CliTestSupport.Run r = CliTestSupport.cli("train", cfg.toString());
        assertEquals(0, r.code(), r.toString());
        JsonNode results = CliTestSupport.JSON.readTree(out.resolve("eval_results.json").toFile());
        assertTrue(results.get("perplexity").asDouble() > 1, results.toString());
        Path adapter = out.resolve("adapter");
        Map<String, INDArray> saved = SafeTensors.load(adapter.resolve("adapter_model.safetensors"));
        assertEquals(List.of("prompt_embeddings"), new ArrayList<>(saved.keySet()));
        assertEquals(3, saved.get("prompt_embeddings").size(0));
        assertEquals(!name.startsWith("PROMPT_TUNING"), Files.isRegularFile(adapter.resolve("peft4j_prompt_encoder.safetensors")),
                "the encoder file exists exactly for encoders");

        String ids = "5,6,7,8";
        CliTestSupport.Run base = CliTestSupport.cli("logits", "--model", gpt2.toString(), "--ids", ids);
        CliTestSupport.Run adapted = CliTestSupport.cli("logits", "--model", gpt2.toString(), "--adapter", adapter.toString(),
                "--ids", ids);
        assertEquals(0, adapted.code(), adapted.toString());
        assertNotEquals(base.out(), adapted.out(), "the adapter changes the logits");

        CliTestSupport.Run gen = CliTestSupport.cli("generate", "--model", gpt2.toString(), "--adapter", adapter.toString(),
                "--prompt", "w1 w2 w3", "--max-new-tokens", "4");
        assertEquals(0, gen.code(), gen.toString());
        assertTrue(gen.out().startsWith("w1 w2 w3"), gen.out());
    }

    @Test
    void classificationTrainEvalPredictWithPromptAdapter() throws Exception {
        Path bert = CliTestSupport.copyModel("bert-tiny", tmp.resolve("bert-tiny"));
        CliTestSupport.writeWordTokenizer(bert, 50, true);
        Path train = tmp.resolve("train.jsonl");
        Path eval = tmp.resolve("eval.jsonl");
        Files.write(train, AdapterCommandsTest.tinyData(32, 1));
        Files.write(eval, AdapterCommandsTest.tinyData(16, 2));
        Path out = tmp.resolve("cls-run");
        Path cfg = tmp.resolve("cls.yaml");
        Files.writeString(cfg, """
                model: %s
                task: sequence_classification
                data: {train: %s, eval: %s, labels: [neg, pos], max_length: 16}
                peft: {peft_type: PREFIX_TUNING, num_virtual_tokens: 4, modules_to_save: [classifier]}
                training: {epochs: 1, batch_size: 8, learning_rate: 0.02, seed: 7, log_interval: 2}
                output_dir: %s
                """.formatted(bert, train, eval, out));
        CliTestSupport.Run r = CliTestSupport.cli("train", cfg.toString());
        assertEquals(0, r.code(), r.toString());
        Path adapter = out.resolve("adapter");
        Map<String, INDArray> saved = SafeTensors.load(adapter.resolve("adapter_model.safetensors"));
        assertTrue(saved.containsKey("prompt_embeddings") && saved.keySet().stream().anyMatch(k -> k.contains("classifier")),
                saved.keySet().toString());
        Path json = tmp.resolve("cls-eval.json");
        CliTestSupport.Run e = CliTestSupport.cli("eval", "--adapter", adapter.toString(), "--data", eval.toString(),
                "--labels", "neg,pos", "--out", json.toString());
        assertEquals(0, e.code(), e.toString());
        double trainerAcc = CliTestSupport.JSON.readTree(out.resolve("eval_results.json").toFile()).get("accuracy").asDouble();
        assertEquals(trainerAcc, CliTestSupport.JSON.readTree(json.toFile()).get("accuracy").asDouble(), 1e-12,
                "the loaded prompt adapter classifies as the trained one");
        CliTestSupport.Run p = CliTestSupport.cli("predict", "--adapter", adapter.toString(), "--text", "w5 w6 w7");
        assertEquals(0, p.code(), p.toString());
        assertTrue(p.out().startsWith("pos") || p.out().startsWith("neg"), p.out());
    }
}
