package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.io.SafeTensorsFile;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code logits}, {@code generate}, {@code info} and {@code embed} on the committed tiny fixtures,
 * whose reference outputs were computed by PyTorch/transformers (peft-core's fixture scripts).
 */
class ModelCommandsTest {
    /** Tolerance of the fixtures' own tests (fp32 against PyTorch). */
    static final double TOL = 1e-4;

    private static Map<String, INDArray> reference(String fixture) throws Exception {
        return SafeTensors.load(CliTestSupport.fixture(fixture).resolve("reference.safetensors"));
    }

    private static long[] row(INDArray ids, INDArray mask, int b) {
        // the real (mask = 1) tokens of row b, in order
        long[] all = ids.getRow(b).toLongVector();
        long[] m = mask.getRow(b).toLongVector();
        return java.util.stream.IntStream.range(0, all.length).filter(i -> m[i] == 1).mapToLong(i -> all[i]).toArray();
    }

    private static String join(long[] ids) {
        return Arrays.stream(ids).mapToObj(Long::toString).collect(Collectors.joining(","));
    }

    /**
     * Each reference row's real tokens, run alone, must give the reference logits at the row's last
     * real position: right-padded rows because attention is causal, left-padded ones because the
     * reference positions count real tokens only (HF's cumsum(mask) - 1).
     */
    private void checkDecoderLogits(String fixture, Path tmp) throws Exception {
        Map<String, INDArray> ref = reference(fixture);
        INDArray ids = ref.get("input_ids");
        INDArray mask = ref.get("attention_mask");
        INDArray logits = ref.get("logits");                         // [B, T, V]
        long vocab = logits.size(2);
        for (int b = 0; b < ids.size(0); b++) {
            long[] real = row(ids, mask, b);
            long[] m = mask.getRow(b).toLongVector();
            int last = 0;
            for (int t = 0; t < m.length; t++) {
                if (m[t] == 1) {
                    last = t;
                }
            }
            Path out = tmp.resolve(fixture.replace('/', '_') + "-" + b + ".json");
            CliTestSupport.Run r = CliTestSupport.cli("logits", "--model", CliTestSupport.fixture(fixture).toString(),
                    "--ids", join(real), "--out", out.toString());
            assertEquals(0, r.code(), r.toString());
            float[] got = CliTestSupport.values(CliTestSupport.JSON.readTree(out.toFile()), 1, vocab);
            double maxErr = 0;
            for (int v = 0; v < vocab; v++) {
                maxErr = Math.max(maxErr, Math.abs(got[v] - logits.getDouble(b, last, v)));
            }
            assertTrue(maxErr <= TOL, fixture + " row " + b + ": max |error| " + maxErr);
        }
    }

    @Test
    void gpt2LogitsMatchReference(@TempDir Path tmp) throws Exception {
        checkDecoderLogits("decoders/gpt2", tmp);
    }

    @Test
    void llamaLogitsMatchReference(@TempDir Path tmp) throws Exception {
        checkDecoderLogits("decoders/llama-gqa", tmp);
    }

    @Test
    void logitsJsonOnStdout() throws Exception {
        CliTestSupport.Run r = CliTestSupport.cli("logits", "--model", CliTestSupport.fixture("decoders/gpt2").toString(),
                "--ids", "11,28,16");
        assertEquals(0, r.code(), r.toString());
        JsonNode n = CliTestSupport.JSON.readTree(r.out());
        assertEquals(2, n.size(), "exactly the keys shape and values: " + n.fieldNames());
        assertEquals(64, CliTestSupport.values(n, 1, 64).length);
    }

    @Test
    void encoderLogitsAreTheLastHiddenState(@TempDir Path tmp) throws Exception {
        Map<String, INDArray> ref = reference("bert-tiny");
        // row 1: 5 real tokens, token types all 0 (row 0 uses type 1, which the command does not take)
        long[] real = row(ref.get("input_ids"), ref.get("attention_mask"), 1);
        assertEquals(5, real.length);
        Path out = tmp.resolve("bert.json");
        CliTestSupport.Run r = CliTestSupport.cli("logits", "--model", CliTestSupport.fixture("bert-tiny").toString(),
                "--ids", join(real), "--out", out.toString());
        assertEquals(0, r.code(), r.toString());
        float[] got = CliTestSupport.values(CliTestSupport.JSON.readTree(out.toFile()), 1, 5, 16);
        INDArray h = ref.get("last_hidden_state");                   // [2, 8, 16]
        double maxErr = 0;
        for (int t = 0; t < 5; t++) {
            for (int d = 0; d < 16; d++) {
                maxErr = Math.max(maxErr, Math.abs(got[t * 16 + d] - h.getDouble(1, t, d)));
            }
        }
        assertTrue(maxErr <= TOL, "max |error| " + maxErr);
    }

    /** Greedy continuation of each fully real reference prompt equals transformers' generate output. */
    @Test
    void greedyGenerationMatchesReference() throws Exception {
        for (String fixture : new String[]{"decoders/gpt2", "decoders/llama-gqa"}) {
            Map<String, INDArray> ref = reference(fixture);
            long[] prompt = ref.get("gen.prompt_ids").getRow(0).toLongVector();
            assertTrue(Arrays.stream(ref.get("gen.prompt_mask").getRow(0).toLongVector()).allMatch(x -> x == 1));
            long[] expected = ref.get("gen.output_ids").getRow(0).toLongVector();
            CliTestSupport.Run r = CliTestSupport.cli("generate", "--model", CliTestSupport.fixture(fixture).toString(),
                    "--prompt-ids", join(prompt), "--max-new-tokens", Integer.toString(expected.length), "--greedy");
            assertEquals(0, r.code(), r.toString());
            assertTrue(r.out().contains("generated ids: " + join(expected)), fixture + ": " + r);
        }
    }

    @Test
    void generateFromTextWithTokenizer(@TempDir Path tmp) throws Exception {
        Path dir = CliTestSupport.copyModel("decoders/gpt2", tmp.resolve("gpt2"));
        CliTestSupport.writeWordTokenizer(dir, 64, false);
        Map<String, INDArray> ref = reference("decoders/gpt2");
        long[] prompt = ref.get("gen.prompt_ids").getRow(0).toLongVector();
        long[] expected = ref.get("gen.output_ids").getRow(0).toLongVector();
        String text = Arrays.stream(prompt).mapToObj(i -> CliTestSupport.word((int) i)).collect(Collectors.joining(" "));
        String continuation = Arrays.stream(expected).mapToObj(i -> CliTestSupport.word((int) i)).collect(Collectors.joining(" "));
        CliTestSupport.Run r = CliTestSupport.cli("generate", "--model", dir.toString(), "--prompt", text,
                "--max-new-tokens", Integer.toString(expected.length));
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().replaceAll("\\s+", " ").contains(continuation), "decoded continuation " + continuation + ": " + r);
        // sampling is seeded: the same seed gives the same text
        String[] sampled = new String[2];
        for (int i = 0; i < 2; i++) {
            CliTestSupport.Run s = CliTestSupport.cli("generate", "--model", dir.toString(), "--prompt", text,
                    "--max-new-tokens", "6", "--temperature", "1.5", "--top-k", "20", "--seed", "7");
            assertEquals(0, s.code(), s.toString());
            sampled[i] = s.out();
        }
        assertEquals(sampled[0], sampled[1]);
    }

    @Test
    void infoShowsFamilySizesCountAndTree() throws Exception {
        Path dir = CliTestSupport.fixture("decoders/llama-gqa");
        CliTestSupport.Run r = CliTestSupport.cli("info", "--model", dir.toString());
        assertEquals(0, r.code(), r.toString());
        long count = 0;
        try (SafeTensorsFile f = SafeTensorsFile.open(dir.resolve("model.safetensors"))) {
            for (String k : f.keys()) {
                count += Arrays.stream(f.info(k).shape()).reduce(1, (x, y) -> x * y);
            }
        }
        assertTrue(r.out().contains("family: llama"), r.out());
        assertTrue(r.out().contains("layers 2, hidden 32, heads 4 (key/value heads 2"), r.out());
        assertTrue(r.out().contains(String.format("parameters: %,d", count)), "count " + count + ": " + r.out());
        assertTrue(r.out().contains("q_proj: Linear(32 -> 32)"), r.out());
        assertTrue(r.out().contains("k_proj: Linear(32 -> 16)"), r.out());
    }

    @Test
    void infoOnBundledMiniLm() {
        CliTestSupport.Run r = CliTestSupport.cli("info", "--model", "minilm", "--no-tree");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("family: bert"), r.out());
        assertTrue(r.out().contains("layers 6, hidden 384, heads 12, intermediate 1536, vocab 30522"), r.out());
        // 22,565,376 = embeddings 11,918,592 + 6 layers × 1,774,464 (no pooler)
        assertTrue(r.out().contains("parameters: 22,565,376"), r.out());
    }

    @Test
    void embedIsUnitLengthWithModelWidth(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("e.json");
        CliTestSupport.Run r = CliTestSupport.cli("embed", "--model", "minilm", "--text", "The movie was wonderful.",
                "A cat sleeps on the sofa.", "--out", out.toString());
        assertEquals(0, r.code(), r.toString());
        float[] v = CliTestSupport.values(CliTestSupport.JSON.readTree(out.toFile()), 2, 384);
        for (int row = 0; row < 2; row++) {
            double sq = 0;
            for (int d = 0; d < 384; d++) {
                sq += v[row * 384 + d] * v[row * 384 + d];
            }
            assertEquals(1.0, Math.sqrt(sq), 1e-5, "row " + row + " has unit L2 norm");
        }
        // the same text alone gives the same embedding (padding in the batch must not change it)
        CliTestSupport.Run one = CliTestSupport.cli("embed", "--model", "minilm", "--text", "The movie was wonderful.");
        assertEquals(0, one.code(), one.toString());
        float[] alone = CliTestSupport.values(CliTestSupport.JSON.readTree(one.out()), 1, 384);
        for (int d = 0; d < 384; d++) {
            assertEquals(alone[d], v[d], 1e-5);
        }
        assertTrue(Files.size(out) > 0);
    }
}
