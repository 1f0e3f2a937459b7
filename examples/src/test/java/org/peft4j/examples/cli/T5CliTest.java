package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code logits --decoder-ids}, {@code generate} (greedy and beam) and {@code info} on the tiny
 * T5 fixtures, against their PyTorch reference (peft-core's {@code make_t5_fixtures.py}), and the
 * encoder-decoder bad inputs (no decoder start token, a decoder input longer than n_positions).
 */
class T5CliTest {
    static final double TOL = 1e-4;

    static Map<String, INDArray> reference(String name) throws Exception {
        return SafeTensors.load(CliTestSupport.fixture("t5/" + name).resolve("reference.safetensors"));
    }

    static String real(INDArray ids, INDArray mask, int row) {
        StringBuilder sb = new StringBuilder();
        for (int t = 0; t < ids.size(1); t++) {
            if (mask.getLong(row, t) == 1) {
                sb.append(sb.length() == 0 ? "" : ",").append(ids.getLong(row, t));
            }
        }
        return sb.toString();
    }

    static String join(int[] v) {
        return Arrays.stream(v).mapToObj(Integer::toString).collect(Collectors.joining(","));
    }

    @Test
    void logitsWithDecoderIdsMatchReference(@TempDir Path tmp) throws Exception {
        for (String name : new String[]{"t5-v1_0", "t5-v1_1"}) {
            Map<String, INDArray> ref = reference(name);
            INDArray logits = ref.get("logits");
            Path out = tmp.resolve(name + ".json");
            CliTestSupport.Run r = CliTestSupport.cli("logits", "--model", CliTestSupport.fixture("t5/" + name).toString(),
                    "--ids", real(ref.get("input_ids"), ref.get("attention_mask"), 0),
                    "--decoder-ids", real(ref.get("decoder_input_ids"), ref.get("decoder_attention_mask"), 0),
                    "--out", out.toString());
            assertEquals(0, r.code(), r.toString());
            long t = logits.size(1);
            long v = logits.size(2);
            float[] got = CliTestSupport.values(CliTestSupport.JSON.readTree(out.toFile()), 1, t, v);
            double err = 0;
            for (int i = 0; i < t; i++) {
                for (int j = 0; j < v; j++) {
                    err = Math.max(err, Math.abs(got[(int) (i * v + j)] - logits.getDouble(0, i, j)));
                }
            }
            assertTrue(err <= TOL, name + ": max |error| " + err);
        }
    }

    @Test
    void generateGreedyAndBeamMatchReference() throws Exception {
        Map<String, INDArray> ref = reference("t5-v1_0");
        String model = CliTestSupport.fixture("t5/t5-v1_0").toString();
        String prompt = real(ref.get("gen.input_ids"), ref.get("gen.attention_mask"), 0);
        CliTestSupport.Run g = CliTestSupport.cli("generate", "--model", model, "--prompt-ids", prompt, "--max-new-tokens", "6",
                "--no-stop");
        assertEquals(0, g.code(), g.toString());
        assertTrue(g.out().contains("generated ids: " + join(ref.get("gen.greedy").getRow(0).toIntVector())), g.out());
        CliTestSupport.Run b = CliTestSupport.cli("generate", "--model", model, "--prompt-ids", prompt, "--max-new-tokens", "7",
                "--num-beams", "3");
        assertEquals(0, b.code(), b.toString());
        assertTrue(b.out().contains("generated ids: " + join(ref.get("gen.beam").getRow(0).toIntVector())), b.out());
        assertTrue(b.err().contains("3-beam search"), b.err());
    }

    /**
     * A T5-style word-level {@code tokenizer.json}: {@code <pad>}=0, {@code </s>}=1, {@code <unk>}=2,
     * words {@code w<i>} for the other ids, and T5's template (the sequence, then {@code </s>}).
     */
    static void writeT5WordTokenizer(Path dir, int vocab) throws Exception {
        ObjectNode root = CliTestSupport.JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        var added = root.putArray("added_tokens");
        ObjectNode v = CliTestSupport.JSON.createObjectNode();
        String[] specials = {"<pad>", "</s>", "<unk>"};
        for (int i = 0; i < specials.length; i++) {
            ObjectNode t = added.addObject();
            t.put("id", i).put("content", specials[i]).put("single_word", false).put("lstrip", false).put("rstrip", false)
                    .put("normalized", false).put("special", true);
            v.put(specials[i], i);
        }
        for (int i = specials.length; i < vocab; i++) {
            v.put(CliTestSupport.word(i), i);
        }
        root.putNull("normalizer");
        root.putObject("pre_tokenizer").put("type", "Whitespace");
        ObjectNode pp = root.putObject("post_processor");
        pp.put("type", "TemplateProcessing");
        var single = pp.putArray("single");
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        single.addObject().putObject("SpecialToken").put("id", "</s>").put("type_id", 0);
        var pair = pp.putArray("pair");
        pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        pair.addObject().putObject("SpecialToken").put("id", "</s>").put("type_id", 0);
        pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 0);
        pair.addObject().putObject("SpecialToken").put("id", "</s>").put("type_id", 0);
        ObjectNode e = pp.putObject("special_tokens").putObject("</s>");
        e.put("id", "</s>");
        e.putArray("ids").add(1);
        e.putArray("tokens").add("</s>");
        root.putNull("decoder");
        ObjectNode model = root.putObject("model");
        model.put("type", "WordLevel");
        model.set("vocab", v);
        model.put("unk_token", "<unk>");
        Files.writeString(dir.resolve("tokenizer.json"), root.toString());
    }

    @Test
    void seq2seqTrainingWithLoraThenGenerateWithTheAdapter(@TempDir Path tmp) throws Exception {
        Path model = CliTestSupport.copyModel("t5/t5-v1_0", tmp.resolve("t5"));
        writeT5WordTokenizer(model, 40);
        Path data = tmp.resolve("pairs.jsonl");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 16; i++) {
            int a = 3 + i % 30, b = 4 + (i * 7) % 30, c = 5 + (i * 3) % 30;
            sb.append(String.format("{\"source\": \"w%d w%d w%d\", \"target\": \"w%d w%d w%d\"}%n", a, b, c, c, b, a));
        }
        Files.writeString(data, sb.toString());
        Path out = tmp.resolve("run");
        Path cfg = tmp.resolve("s2s.yaml");
        Files.writeString(cfg, """
                model: %s
                task: seq2seq
                data: {train: %s, eval: %s, max_length: 12}
                peft: {peft_type: LORA, r: 4, lora_alpha: 8}
                training: {max_steps: 6, batch_size: 8, learning_rate: 0.05, seed: 3, log_interval: 2}
                """.formatted(model, data, data));
        CliTestSupport.Run r = CliTestSupport.cli("train", cfg.toString(), "--output-dir", out.toString());
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("eval exact match (greedy generation)"), r.out());
        var results = CliTestSupport.JSON.readTree(out.resolve("eval_results.json").toFile());
        assertTrue(results.has("token_accuracy"), results.toString());
        var adapterCfg = CliTestSupport.JSON.readTree(out.resolve("adapter/adapter_config.json").toFile());
        assertEquals("SEQ_2_SEQ_LM", adapterCfg.get("task_type").asText());
        assertEquals("[\"q\",\"v\"]", adapterCfg.get("target_modules").toString());
        CliTestSupport.Run g = CliTestSupport.cli("generate", "--model", model.toString(), "--adapter", out.resolve("adapter").toString(),
                "--prompt", "w5 w6 w7", "--max-new-tokens", "5");
        assertEquals(0, g.code(), g.toString());
        Path merged = tmp.resolve("merged");
        CliTestSupport.Run mg = CliTestSupport.cli("merge", "--model", model.toString(), "--adapter", out.resolve("adapter").toString(),
                "--out", merged.toString());
        assertEquals(0, mg.code(), mg.toString());
        assertTrue(mg.out().contains("T5ForConditionalGeneration"), mg.out());
        CliTestSupport.Run bad = CliTestSupport.cli("train", cfg.toString().replace("s2s", "none"));
        assertEquals(2, bad.code());
    }

    /** The experiment command end to end on a tiny budget (the real run's figures are in the README). */
    @Test
    void seq2seqExperimentRunsEndToEnd(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("exp");
        CliTestSupport.Run r = CliTestSupport.cli("seq2seq-experiment", "--out", out.toString(), "--vocab", "40", "--train-pairs",
                "40", "--test-pairs", "8", "--pretrain-steps", "3", "--adapt-steps", "2");
        assertEquals(0, r.code(), r.toString());
        var results = CliTestSupport.JSON.readTree(out.resolve("results.json").toFile());
        assertTrue(results.has("pretrain_reverse") && results.has("lora") && results.has("prefix_tuning"), results.toString());
        assertTrue(results.get("lora").get("trainable_parameters").asLong() > 0, results.toString());
        assertTrue(Files.isRegularFile(out.resolve("t5-reverse/model.safetensors")));
        assertTrue(Files.isRegularFile(out.resolve("adapter-prefix_tuning/adapter_config.json")));
    }

    @Test
    void infoNamesTheEncoderDecoder() {
        CliTestSupport.Run r = CliTestSupport.cli("info", "--model", CliTestSupport.fixture("t5/t5-v1_1").toString(), "--no-tree");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("t5 (encoder-decoder, T5 family)"), r.out());
        assertTrue(r.out().contains("gated-gelu"), r.out());
    }

    @Test
    void badEncoderDecoderInputsAreClearErrors(@TempDir Path tmp) throws Exception {
        Path noStart = CliTestSupport.copyModel("t5/t5-v1_0", tmp.resolve("nostart"));
        ObjectNode c = (ObjectNode) CliTestSupport.JSON.readTree(noStart.resolve("config.json").toFile());
        c.putNull("decoder_start_token_id");
        Files.writeString(noStart.resolve("config.json"), c.toString());
        CliTestSupport.Run r = CliTestSupport.cli("generate", "--model", noStart.toString(), "--prompt-ids", "5,6,7");
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains("decoder_start_token_id"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());

        Path shortModel = CliTestSupport.copyModel("t5/t5-v1_0", tmp.resolve("short"));
        c = (ObjectNode) CliTestSupport.JSON.readTree(shortModel.resolve("config.json").toFile());
        c.put("n_positions", 4);
        Files.writeString(shortModel.resolve("config.json"), c.toString());
        r = CliTestSupport.cli("logits", "--model", shortModel.toString(), "--ids", "5,6", "--decoder-ids", "0,5,6,7,8");
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains("decoder_input_ids has 5 positions") && r.err().contains("n_positions 4"), r.err());
        r = CliTestSupport.cli("generate", "--model", shortModel.toString(), "--prompt-ids", "5,6", "--max-new-tokens", "9");
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains("maxNewTokens 9"), r.err());
    }
}
