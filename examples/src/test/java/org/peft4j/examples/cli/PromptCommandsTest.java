package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The prompt methods through the CLI: {@code train CONFIG.yaml} with PEFT's keys, then
 * {@code logits}, {@code generate}, {@code eval} and {@code predict} with {@code --adapter}, on GPT-2,
 * LLaMA-GQA (causal LM) and BERT (classification; decoder classification is
 * {@link DecoderClassificationCommandsTest}), and bad input naming the key.
 */
class PromptCommandsTest {
    @TempDir
    static Path tmp;

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "gpt2      | {peft_type: PROMPT_TUNING, num_virtual_tokens: 3}",
            "gpt2      | {peft_type: P_TUNING, num_virtual_tokens: 3, encoder_reparameterization_type: LSTM, encoder_hidden_size: 8}",
            "gpt2      | {peft_type: PREFIX_TUNING, num_virtual_tokens: 3, prefix_projection: true, encoder_hidden_size: 8}",
            "gpt2      | {peft_type: PROMPT_TUNING, num_virtual_tokens: 3, prompt_tuning_init: TEXT, prompt_tuning_init_text: 'w1 w2'}",
            "llama-gqa | {peft_type: PROMPT_TUNING, num_virtual_tokens: 3, prompt_tuning_init: SAMPLE_VOCAB}",
            "llama-gqa | {peft_type: P_TUNING, num_virtual_tokens: 3, encoder_reparameterization_type: MLP, encoder_hidden_size: 8}",
            "llama-gqa | {peft_type: PREFIX_TUNING, num_virtual_tokens: 3}"})
    void causalLmTrainThenLogitsAndGenerateWithAdapter(String fixture, String peft) throws Exception {
        String name = fixture + "-" + peft.substring(peft.indexOf(':') + 2, peft.indexOf(','))
                + (peft.contains("TEXT") ? "-text" : "");
        Path gpt2 = CliTestSupport.copyModel("decoders/" + fixture, tmp.resolve("model-" + name));
        CliTestSupport.writeWordTokenizer(gpt2, fixture.equals("gpt2") ? 64 : 96, false);
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
                """.formatted(gpt2, text, text, peft));
        CliTestSupport.Run r = CliTestSupport.cli("train", cfg.toString(), "--output-dir", out.toString());
        assertEquals(0, r.code(), r.toString());
        JsonNode results = CliTestSupport.JSON.readTree(out.resolve("eval_results.json").toFile());
        assertTrue(results.get("perplexity").asDouble() > 1, results.toString());
        Path adapter = out.resolve("adapter");
        Map<String, INDArray> saved = SafeTensors.load(adapter.resolve("adapter_model.safetensors"));
        assertEquals(List.of("prompt_embeddings"), new ArrayList<>(saved.keySet()));
        assertEquals(3, saved.get("prompt_embeddings").size(0));
        assertEquals(peft.contains("P_TUNING") || peft.contains("prefix_projection: true"),
                Files.isRegularFile(adapter.resolve("peft4j_prompt_encoder.safetensors")),
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

    @ParameterizedTest
    @ValueSource(strings = {"{peft_type: PREFIX_TUNING, num_virtual_tokens: 4, modules_to_save: [classifier]}",
            "{peft_type: PROMPT_TUNING, num_virtual_tokens: 4, modules_to_save: [classifier]}",
            "{peft_type: P_TUNING, num_virtual_tokens: 4, encoder_reparameterization_type: LSTM, encoder_hidden_size: 8,"
                    + " modules_to_save: [classifier]}"})
    void classificationTrainEvalPredictWithPromptAdapter(String peft) throws Exception {
        String name = peft.substring(peft.indexOf(':') + 2, peft.indexOf(','));
        Path bert = tmp.resolve("bert-tiny");
        if (!Files.isDirectory(bert)) {
            CliTestSupport.copyModel("bert-tiny", bert);
            CliTestSupport.writeWordTokenizer(bert, 50, true);
        }
        Path train = tmp.resolve("train.jsonl");
        Path eval = tmp.resolve("eval.jsonl");
        Files.write(train, AdapterCommandsTest.tinyData(32, 1));
        Files.write(eval, AdapterCommandsTest.tinyData(16, 2));
        Path out = tmp.resolve("cls-run-" + name);
        Path cfg = tmp.resolve("cls-" + name + ".yaml");
        Files.writeString(cfg, """
                model: %s
                task: sequence_classification
                data: {train: %s, eval: %s, labels: [neg, pos], max_length: 16}
                peft: %s
                training: {epochs: 1, batch_size: 8, learning_rate: 0.02, seed: 7, log_interval: 2}
                """.formatted(bert, train, eval, peft));
        CliTestSupport.Run r = CliTestSupport.cli("train", cfg.toString(), "--output-dir", out.toString());
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

        // logits on the encoder: the virtual tokens are in front of the hidden states (prompt tuning, P-tuning);
        // a prefix leaves T positions and changes the values
        CliTestSupport.Run base = CliTestSupport.cli("logits", "--model", bert.toString(), "--ids", "2,5,6,7,3");
        CliTestSupport.Run l = CliTestSupport.cli("logits", "--model", bert.toString(), "--adapter", adapter.toString(),
                "--ids", "2,5,6,7,3");
        assertEquals(0, l.code(), l.toString());
        JsonNode shape = CliTestSupport.JSON.readTree(l.out()).get("shape");
        assertEquals(name.equals("PREFIX_TUNING") ? "[1,5,16]" : "[1,9,16]", shape.toString().replace(" ", ""), name);
        assertNotEquals(base.out(), l.out(), "the adapter changes the encoder output");
    }

    /** Bad input through the CLI: one line naming the key, exit status 2. */
    @Test
    void badPromptInputsNameTheKey() throws Exception {
        Path gpt2 = tmp.resolve("bad-gpt2");
        CliTestSupport.copyModel("decoders/gpt2", gpt2);    // n_positions 32
        CliTestSupport.writeWordTokenizer(gpt2, 64, false);
        Path text = tmp.resolve("bad-lm.txt");
        Files.write(text, List.of("w1 w2 w3 w4", "w5 w6 w7 w8"));
        String recipe = """
                model: %s
                task: causal_lm
                data: {train: %s, max_length: %d}
                peft: %s
                training: {max_steps: 1, batch_size: 2, learning_rate: 0.05, seed: 3}
                """;
        // num_virtual_tokens + max_length beyond n_positions, before any training
        Path cfg = tmp.resolve("too-long.yaml");
        Files.writeString(cfg, recipe.formatted(gpt2, text, 30, "{peft_type: PROMPT_TUNING, num_virtual_tokens: 3}"));
        CliTestSupport.Run r = CliTestSupport.cli("train", cfg.toString());
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains("peft.num_virtual_tokens 3 + data.max_length 30 = 33 exceeds the model's 32 positions"), r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());

        // TEXT init without text
        cfg = tmp.resolve("text.yaml");
        Files.writeString(cfg, recipe.formatted(gpt2, text, 8,
                "{peft_type: PROMPT_TUNING, num_virtual_tokens: 3, prompt_tuning_init: TEXT}"));
        r = CliTestSupport.cli("train", cfg.toString());
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains("prompt_tuning_init_text"), r.err());

        // a committed GPT-2 prompt folder (4 virtual tokens): too many ids, then onto LLaMA (token_dim), edited num_layers
        Path folder = Path.of("..", "peft-prompt", "src", "test", "resources", "fixtures", "prompt", "gpt2-prompt")
                .toAbsolutePath().normalize();
        String ids = String.join(",", java.util.Collections.nCopies(30, "5"));
        r = CliTestSupport.cli("logits", "--model", gpt2.toString(), "--adapter", folder.toString(), "--ids", ids);
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains("num_virtual_tokens 4") && r.err().contains("32 positions"), r.err());

        Path llama = tmp.resolve("bad-llama");
        CliTestSupport.copyModel("decoders/llama-gqa", llama);
        r = CliTestSupport.cli("logits", "--model", llama.toString(), "--adapter", folder.toString(), "--ids", "5,6");
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains("token_dim 16 does not match the model's 32"), r.err());

        Path edited = Files.createDirectories(tmp.resolve("bad-layers"));
        Files.copy(folder.resolve("adapter_model.safetensors"), edited.resolve("adapter_model.safetensors"));
        Files.writeString(edited.resolve("adapter_config.json"),
                Files.readString(folder.resolve("adapter_config.json")).replace("\"num_layers\": 2", "\"num_layers\": 5"));
        r = CliTestSupport.cli("logits", "--model", gpt2.toString(), "--adapter", edited.toString(), "--ids", "5,6");
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains("num_layers 5 does not match the model's 2"), r.err());
    }
}
