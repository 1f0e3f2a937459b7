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
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bottleneck adapters and AdapterFusion from the CLI on the tiny fixtures: {@code train CONFIG.yaml}
 * with AdapterHub's keys writes AdapterHub folders; {@code eval} / {@code predict} / {@code logits} /
 * {@code generate} take them with {@code --adapter}, on BERT, GPT-2, LLaMA and a quantized LLaMA; a
 * fusion over two trained adapters trains from a recipe and loads with {@code --adapter}; bad input is
 * a named error with exit 2.
 */
class BottleneckCliTest {
    @TempDir
    Path tmp;

    private Path trainBert(Path bert, Path train, Path eval, String name, String peft) throws Exception {
        Path run = tmp.resolve(name);
        Path cfg = tmp.resolve(name + ".yaml");
        Files.writeString(cfg, """
                model: %s
                task: sequence_classification
                data: {train: %s, eval: %s, labels: [neg, pos], max_length: 16}
                peft:
                %s
                training: {epochs: 1, batch_size: 8, learning_rate: 0.01, warmup_ratio: 0.0, log_interval: 2, seed: 7}
                """.formatted(bert, train, eval, peft.indent(2).stripTrailing()));
        CliTestSupport.Run r = CliTestSupport.cli("train", cfg.toString(), "--output-dir", run.toString());
        assertEquals(0, r.code(), r.toString());
        return run.resolve("adapter");
    }

    @Test
    void trainEvalPredictAndFuseOnBert() throws Exception {
        Path bert = CliTestSupport.copyModel("bert-tiny", tmp.resolve("bert-tiny"));
        CliTestSupport.writeWordTokenizer(bert, 50, true);
        Path train = tmp.resolve("train.jsonl");
        Path eval = tmp.resolve("eval.jsonl");
        Files.write(train, AdapterCommandsTest.tinyData(32, 1));
        Files.write(eval, AdapterCommandsTest.tinyData(16, 2));
        Path a = trainBert(bert, train, eval, "seq", """
                peft_type: BOTTLENECK
                config: seq_bn
                reduction_factor: 4
                modules_to_save: [classifier]""");
        JsonNode ac = CliTestSupport.JSON.readTree(a.resolve("adapter_config.json").toFile());
        assertEquals(4, ac.get("config").get("reduction_factor").asInt());
        assertTrue(ac.get("config").get("original_ln_before").asBoolean(), "seq_bn's own default");
        assertEquals("adapters.1.2.0", ac.get("version").asText());
        assertTrue(SafeTensors.load(a.resolve("adapter.safetensors"))
                .containsKey("bert.encoder.layer.1.output.adapters.default.adapter_down.0.weight"));
        assertTrue(SafeTensors.load(a.resolve("model_head.safetensors")).containsKey("classifier.weight"));

        CliTestSupport.Run ev = CliTestSupport.cli("eval", "--adapter", a.toString(), "--data", eval.toString(), "--labels", "neg,pos");
        assertEquals(0, ev.code(), ev.toString());
        assertTrue(ev.out().contains("accuracy"), ev.out());
        CliTestSupport.Run pr = CliTestSupport.cli("predict", "--adapter", a.toString(), "--text", "w5 w30 w8");
        assertEquals(0, pr.code(), pr.toString());
        CliTestSupport.Run merge = CliTestSupport.cli("merge", "--adapter", a.toString(), "--out", tmp.resolve("m").toString());
        assertEquals(2, merge.code(), merge.toString());
        assertTrue(merge.err().contains("cannot be merged"), merge.err());

        Path b = trainBert(bert, train, eval, "houlsby", """
                peft_type: BOTTLENECK
                config: {architecture: bottleneck, mh_adapter: false, output_adapter: true, reduction_factor: 8,
                         non_linearity: swish, original_ln_before: true}
                modules_to_save: [classifier]""");
        Path f = trainBert(bert, train, eval, "fusion", """
                peft_type: BOTTLENECK
                fusion: static
                adapters: [%s, %s]
                modules_to_save: [classifier]""".formatted(a, b));
        JsonNode fc = CliTestSupport.JSON.readTree(f.resolve("adapter_fusion_config.json").toFile());
        assertEquals(List.of("seq", "houlsby"), List.of(fc.get("adapter_names").get(0).asText(), fc.get("adapter_names").get(1).asText()),
                "fused adapters named after their folders (both were saved as 'default')");
        assertTrue(fc.get("config").get("query").asBoolean() && !fc.get("config").get("value").asBoolean());
        assertTrue(Files.isRegularFile(f.resolve("seq/adapter.safetensors")));
        assertTrue(SafeTensors.load(f.resolve("model_adapter_fusion.safetensors"))
                .containsKey("bert.encoder.layer.0.output.adapter_fusion_layer.default.key.weight"));
        CliTestSupport.Run fev = CliTestSupport.cli("eval", "--adapter", f.toString(), "--data", eval.toString(), "--labels", "neg,pos");
        assertEquals(0, fev.code(), fev.toString());
        CliTestSupport.Run fpr = CliTestSupport.cli("predict", "--adapter", f.toString(), "--text", "w5 w30 w8");
        assertEquals(0, fpr.code(), fpr.toString());

        // bad input: a reduction factor that leaves no bottleneck dimension (hidden 16), an unknown key
        Path badCfg = tmp.resolve("bad.yaml");
        Files.writeString(badCfg, """
                model: %s
                data: {train: %s, labels: [neg, pos]}
                peft: {peft_type: BOTTLENECK, config: seq_bn, reduction_factor: 32, modules_to_save: [classifier]}
                """.formatted(bert, train));
        CliTestSupport.Run bad = CliTestSupport.cli("train", badCfg.toString());
        assertEquals(2, bad.code(), bad.toString());
        assertTrue(bad.err().contains("reduction_factor") && bad.err().contains("no bottleneck dimension"), bad.err());
        assertFalse(bad.err().contains("\tat "), "no stack trace: " + bad.err());
        Files.writeString(badCfg, Files.readString(badCfg).replace("reduction_factor: 32", "reduction_factr: 4"));
        bad = CliTestSupport.cli("train", badCfg.toString());
        assertEquals(2, bad.code(), bad.toString());
        assertTrue(bad.err().contains("reduction_factr"), bad.err());
    }

    private static List<String> lmLines() {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            lines.add("w" + (1 + i) + " w" + (2 + i) + " w" + (3 + i) + " w" + (4 + i) + " w" + (5 + i));
        }
        return lines;
    }

    private Path trainLm(Path model, String name, String preset) throws Exception {
        Path text = tmp.resolve("lm.txt");
        Files.write(text, lmLines());
        Path out = tmp.resolve(name);
        Path cfg = tmp.resolve(name + ".yaml");
        Files.writeString(cfg, """
                model: %s
                task: causal_lm
                data: {train: %s, eval: %s, max_length: 16}
                peft: {peft_type: BOTTLENECK, config: %s, reduction_factor: 4}
                training: {max_steps: 4, batch_size: 4, learning_rate: 0.1, seed: 3, log_interval: 1}
                """.formatted(model, text, text, preset));
        CliTestSupport.Run r = CliTestSupport.cli("train", cfg.toString(), "--output-dir", out.toString());
        assertEquals(0, r.code(), r.toString());
        return out.resolve("adapter");
    }

    private static double logitChange(Path model, Path adapter, int vocab) throws Exception {
        String ids = "5,6,7,8";
        CliTestSupport.Run base = CliTestSupport.cli("logits", "--model", model.toString(), "--ids", ids);
        CliTestSupport.Run adapted = CliTestSupport.cli("logits", "--model", model.toString(), "--adapter", adapter.toString(), "--ids", ids);
        assertEquals(0, adapted.code(), adapted.toString());
        float[] b = CliTestSupport.values(CliTestSupport.JSON.readTree(base.out()), 1, vocab);
        float[] a = CliTestSupport.values(CliTestSupport.JSON.readTree(adapted.out()), 1, vocab);
        double change = 0;
        for (int i = 0; i < vocab; i++) {
            change = Math.max(change, Math.abs(a[i] - b[i]));
        }
        return change;
    }

    @Test
    void decodersAndAQuantizedBase() throws Exception {
        Path gpt2 = CliTestSupport.copyModel("decoders/gpt2", tmp.resolve("gpt2"));
        CliTestSupport.writeWordTokenizer(gpt2, 64, false);
        Path ga = trainLm(gpt2, "gpt2-run", "double_seq_bn");
        assertTrue(SafeTensors.load(ga.resolve("adapter.safetensors"))
                .containsKey("transformer.h.0.attention_adapters.adapters.default.adapter_up.weight"));
        assertTrue(logitChange(gpt2, ga, 64) > 1e-4, "the trained adapter changes GPT-2's logits");
        CliTestSupport.Run gen = CliTestSupport.cli("generate", "--model", gpt2.toString(), "--adapter", ga.toString(),
                "--prompt", "w1 w2 w3", "--max-new-tokens", "4");
        assertEquals(0, gen.code(), gen.toString());
        assertTrue(gen.out().startsWith("w1 w2 w3"), gen.out());

        Path llama = CliTestSupport.copyModel("decoders/llama-gqa", tmp.resolve("llama"));
        CliTestSupport.writeWordTokenizer(llama, 64, false);
        Path nf4 = tmp.resolve("llama-nf4");
        assertEquals(0, CliTestSupport.cli("quantize", "--model", llama.toString(), "--out", nf4.toString()).code());
        CliTestSupport.writeWordTokenizer(nf4, 64, false);
        Path qa = trainLm(nf4, "nf4-run", "par_bn");
        assertTrue(SafeTensors.load(qa.resolve("adapter.safetensors"))
                .containsKey("model.layers.1.output_adapters.adapters.default.adapter_down.0.weight"));
        assertTrue(logitChange(nf4, qa, 96) > 1e-4, "the adapter trained on the 4-bit base changes its logits");
        // an adapter for LLaMA on GPT-2: the family is named
        CliTestSupport.Run wrong = CliTestSupport.cli("logits", "--model", gpt2.toString(), "--adapter", qa.toString(), "--ids", "5,6");
        assertEquals(2, wrong.code(), wrong.toString());
        assertTrue(wrong.err().contains("model_type 'llama'"), wrong.err());
    }
}
