package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code train} (YAML), {@code eval}, {@code predict}, {@code merge} and {@code --adapter} on the
 * tiny BERT and GPT-2 fixtures with a word-level tokenizer: one sequence-classification run shared
 * by the tests of this class.
 */
class AdapterCommandsTest {
    @TempDir
    static Path tmp;
    static Path bertDir;
    static Path evalData;
    static Path runDir;
    static Path configFile;
    static CliTestSupport.Run trainRun;

    /** Texts of words w4..w19 are "pos", of w20..w35 "neg", with a seeded choice of words. */
    static List<String> tinyData(int n, long seed) {
        Rng rng = new Rng(seed);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            boolean pos = i % 2 == 0;
            StringBuilder sb = new StringBuilder();
            int len = 3 + rng.nextInt(6);
            for (int w = 0; w < len; w++) {
                sb.append(w == 0 ? "" : " ").append(CliTestSupport.word((pos ? 4 : 20) + rng.nextInt(16)));
            }
            lines.add("{\"text\": \"" + sb + "\", \"label\": \"" + (pos ? "pos" : "neg") + "\"}");
        }
        return lines;
    }

    @BeforeAll
    static void trainTinyClassifier() throws Exception {
        bertDir = CliTestSupport.copyModel("bert-tiny", tmp.resolve("bert-tiny"));
        CliTestSupport.writeWordTokenizer(bertDir, 50, true);
        Path trainData = tmp.resolve("train.jsonl");
        evalData = tmp.resolve("eval.jsonl");
        Files.write(trainData, tinyData(48, 1));
        Files.write(evalData, tinyData(16, 2));
        runDir = tmp.resolve("run");
        configFile = tmp.resolve("tiny.yaml");
        Files.writeString(configFile, """
                model: %s
                task: sequence_classification
                data:
                  train: %s
                  eval: %s
                  labels: [neg, pos]
                  max_length: 16
                peft:
                  peft_type: LORA
                  r: 4
                  lora_alpha: 8
                  lora_dropout: 0.0
                  target_modules: [query, value]
                  modules_to_save: [classifier]
                training:
                  epochs: 2
                  batch_size: 8
                  learning_rate: 0.02
                  warmup_ratio: 0.0
                  log_interval: 2
                  seed: 7
                """.formatted(bertDir, trainData, evalData));
        trainRun = CliTestSupport.cli("train", configFile.toString(), "--output-dir", runDir.toString());
    }

    @Test
    void trainWritesAdapterMetricsAndResolvedConfig() throws Exception {
        assertEquals(0, trainRun.code(), trainRun.toString());
        assertTrue(trainRun.out().contains("trainable params:"), trainRun.out());
        Path adapter = runDir.resolve("adapter");
        assertEquals(List.of("adapter_config.json", "adapter_model.safetensors", Classification.TASK_FILE),
                CliTestSupport.fileNames(adapter));
        JsonNode ac = CliTestSupport.JSON.readTree(adapter.resolve("adapter_config.json").toFile());
        assertEquals("LORA", ac.get("peft_type").asText());
        assertEquals(4, ac.get("r").asInt());
        assertEquals("SEQ_CLS", ac.get("task_type").asText());
        assertEquals(bertDir.toAbsolutePath().normalize().toString(), ac.get("base_model_name_or_path").asText());

        // metrics.jsonl: strict JSON lines, training records every 2 steps and one evaluation per epoch
        List<String> lines = Files.readAllLines(runDir.resolve("metrics.jsonl"));
        int train = 0;
        int eval = 0;
        for (String l : lines) {
            JsonNode n = CliTestSupport.JSON.readTree(l);
            if (n.get("type").asText().equals("train")) {
                train++;
                assertTrue(n.get("loss").isNumber(), l);
            } else if (n.get("type").asText().equals("eval")) {
                eval++;
                assertTrue(n.get("accuracy").isNumber(), l);
            }
        }
        assertEquals(6, train, "12 steps (2 epochs x 6 batches), logged every 2: " + lines);
        assertEquals(2, eval, "one evaluation per epoch: " + lines);

        JsonNode resolved = new YAMLMapper().readTree(runDir.resolve(TrainCommand.RESOLVED).toFile());
        assertEquals(7, resolved.at("/training/seed").asInt());
        assertEquals(7, resolved.at("/provenance/seed").asInt());
        assertEquals(4, resolved.at("/peft/r").asInt());
        assertEquals(0.02, resolved.at("/training/learning_rate").asDouble(), 1e-12);
        assertEquals("sequence_classification", resolved.get("task").asText());
        assertEquals(48, resolved.at("/provenance/train_examples").asInt());
        assertEquals(12, resolved.at("/provenance/steps").asInt());

        JsonNode results = CliTestSupport.JSON.readTree(runDir.resolve("eval_results.json").toFile());
        assertTrue(results.get("accuracy").isNumber());
    }

    /** The resolved config is a complete recipe: training from it again gives the same adapter tensors. */
    @Test
    void resolvedConfigReproducesTheRun() throws Exception {
        assertEquals(0, trainRun.code(), trainRun.toString());
        Path again = tmp.resolve("again");
        CliTestSupport.Run r = CliTestSupport.cli("train", runDir.resolve(TrainCommand.RESOLVED).toString(),
                "--output-dir", again.toString());
        assertEquals(0, r.code(), r.toString());
        Map<String, INDArray> a = SafeTensors.load(runDir.resolve("adapter/adapter_model.safetensors"));
        Map<String, INDArray> b = SafeTensors.load(again.resolve("adapter/adapter_model.safetensors"));
        assertEquals(a.keySet(), b.keySet());
        for (String k : a.keySet()) {
            assertArrayEquals(a.get(k).shape(), b.get(k).shape(), k);
            assertEquals(0.0, a.get(k).sub(b.get(k)).amaxNumber().doubleValue(), 0.0, k);
        }
    }

    @Test
    void evalReportsTheTrainersFinalAccuracy() throws Exception {
        assertEquals(0, trainRun.code(), trainRun.toString());
        Path json = tmp.resolve("eval.json");
        CliTestSupport.Run r = CliTestSupport.cli("eval", "--adapter", runDir.resolve("adapter").toString(),
                "--data", evalData.toString(), "--labels", "neg,pos", "--out", json.toString());
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("accuracy:"), r.out());
        double trainerAcc = CliTestSupport.JSON.readTree(runDir.resolve("eval_results.json").toFile()).get("accuracy").asDouble();
        JsonNode mine = CliTestSupport.JSON.readTree(json.toFile());
        assertEquals(16, mine.get("examples").asInt());
        assertEquals(trainerAcc, mine.get("accuracy").asDouble(), 1e-12, "same model, same data, same accuracy");
    }

    @Test
    void predictPrintsALabelPerText() {
        assertEquals(0, trainRun.code(), trainRun.toString());
        CliTestSupport.Run r = CliTestSupport.cli("predict", "--adapter", runDir.resolve("adapter").toString(),
                "--text", "w5 w6 w7", "w21 w22");
        assertEquals(0, r.code(), r.toString());
        List<String> lines = r.out().lines().toList();
        assertEquals(2, lines.size(), r.out());
        for (String l : lines) {
            assertTrue(l.startsWith("pos") || l.startsWith("neg"), l);
            assertTrue(l.contains("%"), l);
        }
    }

    /** merge writes a classifier folder that loads without PEFT and computes what base + adapter computes. */
    @Test
    void mergedClassifierMatchesAdapterModel() throws Exception {
        assertEquals(0, trainRun.code(), trainRun.toString());
        Path adapter = runDir.resolve("adapter");
        Path merged = tmp.resolve("merged-cls");
        CliTestSupport.Run r = CliTestSupport.cli("merge", "--adapter", adapter.toString(), "--out", merged.toString());
        assertEquals(0, r.code(), r.toString());
        assertTrue(CliTestSupport.fileNames(merged).containsAll(List.of("config.json", "model.safetensors", "tokenizer.json")),
                CliTestSupport.fileNames(merged).toString());

        BertForSequenceClassification plain = BertForSequenceClassification.load(merged);
        BertForSequenceClassification withHead = BertForSequenceClassification.withNewHead(BertModel.load(bertDir),
                List.of("neg", "pos"), BertForSequenceClassification.load(merged).config().classifierPooling(), new Rng(3));
        PeftModel pm = PeftModel.load(withHead, adapter);
        pm.eval();
        INDArray ids = Nd4j.createFromArray(new long[][]{{2, 5, 9, 30, 3}, {2, 22, 23, 3, 0}});
        INDArray mask = Nd4j.createFromArray(new float[][]{{1, 1, 1, 1, 1}, {1, 1, 1, 1, 0}});
        try (NoGrad ignored = NoGrad.enter()) {
            INDArray expected = withHead.forward(ids, mask, null).value();
            INDArray got = plain.forward(ids, mask, null).value();
            double diff = got.sub(expected).amaxNumber().doubleValue();
            assertTrue(diff <= 1e-5, "merged vs adapter logits: " + diff);
        }
        // the merge is not trivial: LoRA changed the query weights
        INDArray baseQ = SafeTensors.load(bertDir.resolve("model.safetensors")).get("encoder.layer.0.attention.self.query.weight");
        INDArray mergedQ = SafeTensors.load(merged.resolve("model.safetensors")).get("bert.encoder.layer.0.attention.self.query.weight");
        assertTrue(mergedQ.sub(baseQ).amaxNumber().doubleValue() > 1e-6, "merged weights differ from the base");

        // and the merged folder is a classifier on its own
        CliTestSupport.Run viaAdapter = CliTestSupport.cli("predict", "--adapter", adapter.toString(), "--text", "w5 w30 w8");
        CliTestSupport.Run viaMerged = CliTestSupport.cli("predict", "--model", merged.toString(), "--text", "w5 w30 w8");
        assertEquals(0, viaMerged.code(), viaMerged.toString());
        assertEquals(viaAdapter.out(), viaMerged.out());
    }

    /** Causal-LM training on the GPT-2 fixture; logits/generate with --adapter; merge of a decoder. */
    @Test
    void causalLmTrainAdapterLogitsAndMerge() throws Exception {
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
                peft: {peft_type: LORA, r: 2, lora_alpha: 4, target_modules: [c_attn], fan_in_fan_out: true}
                training: {max_steps: 4, batch_size: 4, learning_rate: 0.05, seed: 3, log_interval: 1}
                """.formatted(gpt2, text, text));
        CliTestSupport.Run r = CliTestSupport.cli("train", cfg.toString(), "--output-dir", out.toString());
        assertEquals(0, r.code(), r.toString());
        JsonNode results = CliTestSupport.JSON.readTree(out.resolve("eval_results.json").toFile());
        assertTrue(results.get("perplexity").asDouble() > 1, results.toString());
        Path adapter = out.resolve("adapter");
        assertTrue(Files.isRegularFile(adapter.resolve("adapter_model.safetensors")));
        assertFalse(Files.exists(adapter.resolve(Classification.TASK_FILE)), "no classification task file for an LM");

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
        assertTrue(change > 1e-4, "the trained adapter changes the logits: " + change);

        Path merged = tmp.resolve("gpt2-merged");
        CliTestSupport.Run m = CliTestSupport.cli("merge", "--adapter", adapter.toString(), "--out", merged.toString());
        assertEquals(0, m.code(), m.toString());
        CliTestSupport.Run viaMerged = CliTestSupport.cli("logits", "--model", merged.toString(), "--ids", ids);
        assertEquals(0, viaMerged.code(), viaMerged.toString());
        float[] mm = CliTestSupport.values(CliTestSupport.JSON.readTree(viaMerged.out()), 1, 64);
        for (int i = 0; i < 64; i++) {
            assertEquals(a[i], mm[i], 1e-5, "merged logit " + i);
        }

        CliTestSupport.Run gen = CliTestSupport.cli("generate", "--model", gpt2.toString(), "--adapter", adapter.toString(),
                "--prompt", "w1 w2 w3", "--max-new-tokens", "4");
        assertEquals(0, gen.code(), gen.toString());
        assertTrue(gen.out().startsWith("w1 w2 w3"), gen.out());
    }
}
