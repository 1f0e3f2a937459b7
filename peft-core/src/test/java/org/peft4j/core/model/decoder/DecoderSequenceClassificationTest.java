package org.peft4j.core.model.decoder;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.ModelFamilies;
import org.peft4j.core.nn.Module;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.testing.RepoFixtures;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@link DecoderForSequenceClassification} against scripts/reference/make_prompt_fixtures.py
 * (plain PyTorch of transformers' GPT2ForSequenceClassification / LlamaForSequenceClassification):
 * the checkpoints under {@code fixtures/decoders-seqcls/} load strictly through the family
 * registry and give the script's logits to 1e-4 on a batch whose second row holds the pad id
 * inside and is right-padded; a saved folder passes the script's check.
 */
class DecoderSequenceClassificationTest {
    static final double TOL = 1e-4;

    static Path fixture(String name) {
        return RepoFixtures.core("decoders-seqcls/" + name);
    }

    static double maxAbsDiff(INDArray a, INDArray b) {
        return a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama-gqa", "llama-headdim"})
    void checkpointLoadsStrictlyAndMatchesPyTorch(String name, @TempDir Path tmp) throws Exception {
        Path dir = fixture(name);
        Module m = ModelFamilies.forFolder(dir).load(dir, 0L);
        DecoderForSequenceClassification c = assertInstanceOf(DecoderForSequenceClassification.class, m);
        assertEquals(List.of("neg", "neutral", "pos"), c.labels());
        assertEquals(3, c.padTokenId());
        assertTrue(c.namedParameters().containsKey("score.weight"), c.namedParameters().keySet().toString());
        assertFalse(c.namedParameters().keySet().stream().anyMatch(k -> k.startsWith("lm_head")), "no LM head");
        Map<String, INDArray> ref = SafeTensors.load(dir.resolve("reference.safetensors"));
        INDArray got;
        try (NoGrad ignored = NoGrad.enter()) {
            got = c.forward(ref.get("input_ids"), ref.get("attention_mask")).value();
        }
        assertArrayEquals(ref.get("logits").shape(), got.shape());
        double err = maxAbsDiff(ref.get("logits"), got);
        assertTrue(err < TOL, name + ": max |logits − PyTorch| = " + err);

        // save → the same keys, strict reload, same logits; the script checks the folder
        c.save(tmp);
        assertEquals(SafeTensors.load(dir.resolve("model.safetensors")).keySet(), SafeTensors.load(tmp.resolve("model.safetensors")).keySet());
        DecoderForSequenceClassification again = DecoderForSequenceClassification.load(tmp);
        INDArray got2;
        try (NoGrad ignored = NoGrad.enter()) {
            got2 = again.forward(ref.get("input_ids"), ref.get("attention_mask")).value();
        }
        assertEquals(0.0, maxAbsDiff(got, got2), 0.0, name + ": reloaded");
        SafeTensors.write(tmp.resolve("peft4j_logits.safetensors"), Map.of("input_ids", ref.get("input_ids"),
                "attention_mask", ref.get("attention_mask"), "logits", got.castTo(DataType.FLOAT)));
        runScript("--check-classifier", tmp, name);

        // a causal-LM loader refuses the classifier folder by name
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CausalLMs.load(dir));
        assertTrue(e.getMessage().contains(c.architecture()) && e.getMessage().contains("not a causal LM"), e.getMessage());
    }

    @Test
    void lastTokenIsTheRightmostNonPadIdAsTransformersFindsIt() {
        INDArray ids = Nd4j.createFromArray(new long[][]{{5, 3, 7, 3, 3}, {3, 3, 8, 9, 4}, {3, 3, 3, 3, 3}, {6, 6, 6, 6, 6}});
        assertArrayEquals(new int[]{2, 4, 0, 4}, DecoderForSequenceClassification.lastTokenIndices(ids, 3));
        assertArrayEquals(new int[]{2}, DecoderForSequenceClassification.lastTokenIndices(Nd4j.createFromArray(new long[][]{{1, 2, 3}}), null));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DecoderForSequenceClassification.lastTokenIndices(ids, null));
        assertTrue(e.getMessage().contains("pad_token_id"), e.getMessage());
    }

    /** Missing score.weight, a mis-shaped one and a leftover lm_head are each named; nothing is loaded silently. */
    @Test
    void badCheckpointsAreNamed(@TempDir Path tmp) throws Exception {
        Path src = fixture("llama-gqa");
        Map<String, INDArray> w = new LinkedHashMap<>(SafeTensors.load(src.resolve("model.safetensors")));
        String config = Files.readString(src.resolve(HfFolder.CONFIG_FILE), StandardCharsets.UTF_8);

        Path missing = Files.createDirectories(tmp.resolve("missing"));
        Map<String, INDArray> m1 = new LinkedHashMap<>(w);
        m1.remove("score.weight");
        write(missing, config, m1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DecoderForSequenceClassification.load(missing));
        assertTrue(e.getMessage().contains("missing keys [score.weight]"), e.getMessage());

        Path shape = Files.createDirectories(tmp.resolve("shape"));
        Map<String, INDArray> m2 = new LinkedHashMap<>(w);
        m2.put("score.weight", Nd4j.zeros(DataType.FLOAT, 2, 32));
        write(shape, config, m2);
        e = assertThrows(IllegalArgumentException.class, () -> DecoderForSequenceClassification.load(shape));
        assertTrue(e.getMessage().contains("'score.weight' expected [3, 32] found [2, 32]"), e.getMessage());

        Path extra = Files.createDirectories(tmp.resolve("extra"));
        Map<String, INDArray> m3 = new LinkedHashMap<>(w);
        m3.put("lm_head.weight", Nd4j.zeros(DataType.FLOAT, 96, 32));
        write(extra, config.replace("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false"), m3);
        e = assertThrows(IllegalArgumentException.class, () -> DecoderForSequenceClassification.load(extra));
        assertTrue(e.getMessage().contains("unexpected keys [lm_head.weight]"), e.getMessage());
    }

    private static void write(Path dir, String config, Map<String, INDArray> weights) throws Exception {
        Files.writeString(dir.resolve(HfFolder.CONFIG_FILE), config, StandardCharsets.UTF_8);
        SafeTensors.write(dir.resolve("model.safetensors"), weights);
    }

    /**
     * A new head on a causal LM shares its decoder stack (no copy), is N(0, initializer_range) and
     * trains: the loss falls and only score (and what the caller leaves trainable) gets gradients.
     */
    @Test
    void newHeadOnACausalLmTrains() throws Exception {
        DecoderLM lm = CausalLMs.load(RepoFixtures.core("decoders/gpt2"));
        DecoderForSequenceClassification c = DecoderForSequenceClassification.withNewHead(lm, List.of("a", "b"), 63, new Rng(5));
        assertTrue(c.backbone() == lm.backbone(), "the decoder stack is shared");
        INDArray w = c.namedParameters().get("score.weight").value();
        double std = w.stdNumber().doubleValue();
        assertTrue(std > 0.005 && std < 0.04, "score init std " + std + " (initializer_range 0.02)");
        assertEquals("GPT2ForSequenceClassification", c.configJson().path("architectures").path(0).asText());

        c.backbone();
        ((Module) c.backbone()).freeze();
        INDArray ids = Nd4j.createFromArray(new long[][]{{5, 9, 17, 63}, {20, 21, 63, 63}});
        INDArray mask = Nd4j.createFromArray(new long[][]{{1, 1, 1, 1}, {1, 1, 0, 0}});
        INDArray labels = Nd4j.createFromArray(new long[]{1, 0});
        org.peft4j.core.train.AdamW opt = new org.peft4j.core.train.AdamW(c.namedTrainableParameters(), 0.1, 0.0);
        assertEquals(List.of("score.weight"), List.copyOf(c.namedTrainableParameters().keySet()));
        double first = Double.NaN;
        double loss = Double.NaN;
        for (int step = 0; step < 30; step++) {
            Tensor l = Ops.crossEntropy(c.forward(ids, mask), labels, Ops.Reduction.MEAN);
            loss = l.item();
            if (step == 0) {
                first = loss;
            }
            opt.zeroGrad();
            l.backward();
            opt.step();
        }
        assertTrue(loss < 0.5 * first, "loss " + first + " → " + loss);
    }

    static void runScript(String mode, Path folder, String model) throws Exception {
        assumeTrue(RepoFixtures.pythonTorchAvailable(), "no torch for /usr/bin/python3");
        Process p = new ProcessBuilder("/usr/bin/python3",
                RepoFixtures.repoRoot().resolve("scripts/reference/make_prompt_fixtures.py").toString(), mode, folder.toString(), model)
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "check timed out");
        assertEquals(0, p.exitValue(), "make_prompt_fixtures.py " + mode + " failed:\n" + out);
        assertTrue(out.contains("max |logits difference|"), "the check compared logits:\n" + out);
    }
}
