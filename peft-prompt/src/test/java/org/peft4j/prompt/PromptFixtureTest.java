package org.peft4j.prompt;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.model.HeadOutput;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.decoder.DecoderForSequenceClassification;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.NoGrad;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * PEFT-layout folders written by scripts/reference/make_prompt_fixtures.py (plain PyTorch of
 * PEFT's semantics) for the tiny GPT-2, LLaMA (GQA) and BERT fixtures: loaded through
 * {@link PeftModel#load}, the model's logits match the script's to 1e-4; saving writes
 * {@code prompt_embeddings} equal to the loaded one, and the script checks the saved folder
 * (config keys, tensor shape, logits recomputed from it).
 */
class PromptFixtureTest {
    static final double TOL = 1e-4;

    static String modelOf(String fixture) {
        return fixture.startsWith("gpt2") ? "gpt2" : "llama-gqa";
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-prompt", "gpt2-ptuning-lstm", "gpt2-prefix", "gpt2-prefix-proj", "llama-gqa-prompt",
            "llama-gqa-ptuning-mlp", "llama-gqa-prefix", "llama-gqa-prefix-proj"})
    void loadedFolderMatchesPyTorchAndSavesBack(String fixture, @TempDir Path tmp) throws Exception {
        Path dir = PromptFixtures.prompt(fixture);
        Map<String, INDArray> ref = SafeTensors.load(dir.resolve("reference.safetensors"));
        DecoderLM model = PromptFixtures.decoder(modelOf(fixture));
        PeftModel pm = PeftModel.load(model, dir);
        INDArray ids = ref.get("input_ids");
        INDArray want = ref.get("logits");
        INDArray got;
        try (NoGrad ignored = NoGrad.enter()) {
            got = model.forward(ids, null).value().castTo(DataType.FLOAT);
        }
        assertArrayEquals(want.shape(), got.shape(), fixture + " logits shape");
        double err = Transforms.maxAbsDiff(want, got);
        assertTrue(err < TOL, fixture + ": max |logits − PyTorch| = " + err);

        // saving writes PEFT's one tensor, equal to what was loaded
        pm.save(tmp);
        Map<String, INDArray> saved = SafeTensors.load(tmp.resolve(PeftModel.WEIGHTS_NAME));
        assertEquals(java.util.Set.of("prompt_embeddings"), saved.keySet());
        INDArray orig = SafeTensors.load(dir.resolve(PeftModel.WEIGHTS_NAME)).get("prompt_embeddings");
        assertEquals(0.0, Transforms.maxAbsDiff(orig, saved.get("prompt_embeddings")), 0.0, fixture + " prompt_embeddings");
        String json = Files.readString(tmp.resolve(PeftModel.CONFIG_NAME), StandardCharsets.UTF_8);
        for (String key : new String[]{"\"num_virtual_tokens\"", "\"token_dim\"", "\"num_transformer_submodules\"",
                "\"num_attention_heads\"", "\"num_layers\"", "\"peft_type\""}) {
            assertTrue(json.contains(key), fixture + " config lacks " + key + ": " + json);
        }
        // the script checks peft4j's folder, with logits peft4j computed
        SafeTensors.write(tmp.resolve("peft4j_logits.safetensors"), Map.of("input_ids", ids, "logits", got));
        runCheck(tmp, modelOf(fixture));
    }

    /**
     * BERT (bert-tiny with a pooler classification head, as transformers' BertForSequenceClassification):
     * the folders hold prompt_embeddings and the classifier (modules_to_save); with token types
     * (sentence B ones) and a right-padded row, the last hidden state (virtual positions included
     * for prompt tuning / P-tuning) and the logits match the script to 1e-4; the saved folder
     * passes the script's check with peft4j's logits.
     */
    @ParameterizedTest
    @ValueSource(strings = {"bert-prompt", "bert-ptuning-mlp", "bert-prefix", "bert-prefix-proj"})
    void bertFolderMatchesPyTorchAndSavesBack(String fixture, @TempDir Path tmp) throws Exception {
        Path dir = PromptFixtures.prompt(fixture);
        Map<String, INDArray> ref = SafeTensors.load(dir.resolve("reference.safetensors"));
        BertForSequenceClassification model = PromptFixtures.bertClassifier();
        PeftModel pm = PeftModel.load(model, dir);
        INDArray ids = ref.get("input_ids");
        INDArray tt = ref.get("token_type_ids");
        INDArray mask = ref.get("attention_mask");
        INDArray logits;
        INDArray hidden;
        INDArray viaIds;
        try (NoGrad ignored = NoGrad.enter()) {
            HeadOutput o = model.forward(BackboneInputs.of(model.bert().embed(ids), mask).withTokenTypeIds(tt));
            logits = o.logits().value().castTo(DataType.FLOAT);
            hidden = o.backbone().lastHiddenState().value().castTo(DataType.FLOAT);
            viaIds = model.forward(ids, mask, tt).value().castTo(DataType.FLOAT);
        }
        assertArrayEquals(ref.get("last_hidden_state").shape(), hidden.shape(), fixture + " hidden shape");
        double errH = Transforms.maxAbsDiff(ref.get("last_hidden_state"), hidden);
        assertTrue(errH < TOL, fixture + ": max |last hidden state − PyTorch| = " + errH);
        double err = Transforms.maxAbsDiff(ref.get("logits"), logits);
        assertTrue(err < TOL, fixture + ": max |logits − PyTorch| = " + err);
        assertEquals(0.0, Transforms.maxAbsDiff(logits, viaIds), 0.0, fixture + ": the id forward runs the same path");

        pm.save(tmp);
        Map<String, INDArray> saved = SafeTensors.load(tmp.resolve(PeftModel.WEIGHTS_NAME));
        assertEquals(java.util.Set.of("prompt_embeddings", "base_model.model.classifier.weight",
                "base_model.model.classifier.bias"), saved.keySet());
        SafeTensors.write(tmp.resolve("peft4j_logits.safetensors"), Map.of("input_ids", ids, "token_type_ids", tt,
                "attention_mask", mask, "logits", logits));
        runCheck(tmp, "bert");
    }

    /**
     * Decoder sequence classification (GPT-2, LLaMA-GQA) with a prompt method: a new score head on
     * the causal LM, the folder's prompt_embeddings and score (modules_to_save) loaded over it; the
     * logits at the last non-pad token (shifted by the virtual tokens for prompt tuning / P-tuning)
     * match the script to 1e-4, and the saved folder passes its check.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gpt2-seqcls-prompt", "gpt2-seqcls-prefix", "llama-gqa-seqcls-ptuning-mlp", "llama-gqa-seqcls-prefix"})
    void decoderClassifierFolderMatchesPyTorch(String fixture, @TempDir Path tmp) throws Exception {
        Path dir = PromptFixtures.prompt(fixture);
        Map<String, INDArray> ref = SafeTensors.load(dir.resolve("reference.safetensors"));
        DecoderForSequenceClassification model = DecoderForSequenceClassification.withNewHead(
                PromptFixtures.decoder(modelOf(fixture)), java.util.List.of("neg", "neutral", "pos"), 3,
                new org.peft4j.core.tensor.Rng(1));
        PeftModel pm = PeftModel.load(model, dir);
        INDArray ids = ref.get("input_ids");
        INDArray mask = ref.get("attention_mask");
        INDArray got;
        try (NoGrad ignored = NoGrad.enter()) {
            got = model.forward(ids, mask).value().castTo(DataType.FLOAT);
        }
        double err = Transforms.maxAbsDiff(ref.get("logits"), got);
        assertTrue(err < TOL, fixture + ": max |logits − PyTorch| = " + err);
        pm.save(tmp);
        assertEquals(java.util.Set.of("prompt_embeddings", "base_model.model.score.weight"),
                SafeTensors.load(tmp.resolve(PeftModel.WEIGHTS_NAME)).keySet());
        SafeTensors.write(tmp.resolve("peft4j_logits.safetensors"), Map.of("input_ids", ids, "attention_mask", mask, "logits", got));
        runCheck(tmp, modelOf(fixture));
    }

    /** Resuming: with trainable = true the encoder comes back from the extra file and gives prompt_embeddings again. */
    @ParameterizedTest
    @ValueSource(strings = {"gpt2-ptuning-lstm", "gpt2-prefix-proj", "llama-gqa-ptuning-mlp", "llama-gqa-prefix-proj"})
    void encoderFileResumesTraining(String fixture) throws Exception {
        Path dir = PromptFixtures.prompt(fixture);
        DecoderLM model = PromptFixtures.decoder(modelOf(fixture));
        PeftModel pm = PeftModel.load(model, dir, PeftModel.DEFAULT_ADAPTER, true);
        PromptSource s = PromptLearningMethod.requireLayer(pm.baseModel()).source(PeftModel.DEFAULT_ADAPTER);
        assertTrue(s.hasEncoder(), fixture + ": the encoder is rebuilt");
        INDArray want = SafeTensors.load(dir.resolve(PeftModel.WEIGHTS_NAME)).get("prompt_embeddings");
        INDArray out;
        try (NoGrad ignored = NoGrad.enter()) {
            out = s.output().value();
        }
        double err = Transforms.maxAbsDiff(want, out);
        assertTrue(err < TOL, fixture + ": encoder output vs prompt_embeddings " + err);
        assertEquals(s.numParameters(), pm.numTrainableParameters(), fixture + ": only the encoder trains");
    }

    static void runCheck(Path folder, String model) throws IOException, InterruptedException {
        Path python = Path.of("/usr/bin/python3");
        assumeTrue(Files.isExecutable(python), "no /usr/bin/python3");
        Process probe = new ProcessBuilder(python.toString(), "-c", "import torch, numpy").redirectErrorStream(true).start();
        assumeTrue(probe.waitFor(120, TimeUnit.SECONDS) && probe.exitValue() == 0, "no torch for /usr/bin/python3");
        Process p = new ProcessBuilder(python.toString(), PromptFixtures.script().toString(), "--check", folder.toString(), model)
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "check timed out");
        assertEquals(0, p.exitValue(), "make_prompt_fixtures.py --check failed:\n" + out);
        assertTrue(out.contains("max |logits difference|"), "the check compared logits:\n" + out);
    }

    static final class Transforms {
        static double maxAbsDiff(INDArray a, INDArray b) {
            return a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
        }
    }
}
