package org.peft4j.prompt;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.generate.GenerationConfig;
import org.peft4j.core.model.generate.GenerationResult;
import org.peft4j.core.model.generate.Generator;
import org.peft4j.core.model.t5.T5ForConditionalGeneration;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.testing.RepoFixtures;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Prompt methods on the tiny T5 (v1.1): PEFT-layout PREFIX_TUNING and PROMPT_TUNING folders with
 * num_transformer_submodules 2, written by {@code make_t5_fixtures.py}, reproduce its logits
 * (≤ 1e-4); cached and uncached generation agree with a prefix; a fresh prefix trains; a prefix
 * folder built for a decoder-only model is refused with a clear error.
 */
class T5PromptTest {
    static final Path DIR = RepoFixtures.core("t5/t5-v1_1");

    static double maxErr(Tensor got, INDArray want, INDArray mask) {
        double err = 0;
        for (int b = 0; b < mask.size(0); b++) {
            for (int t = 0; t < mask.size(1); t++) {
                if (mask.getLong(b, t) == 1) {
                    for (int v = 0; v < want.size(2); v++) {
                        err = Math.max(err, Math.abs(got.value().getDouble(b, t, v) - want.getDouble(b, t, v)));
                    }
                }
            }
        }
        return err;
    }

    @ParameterizedTest
    @ValueSource(strings = {"prefix", "prompt"})
    void peftLayoutFolderReproducesReferenceLogits(String kind) throws Exception {
        T5ForConditionalGeneration m = T5ForConditionalGeneration.load(DIR);
        Map<String, INDArray> ref = SafeTensors.load(DIR.resolve("reference.safetensors"));
        INDArray want = SafeTensors.load(DIR.resolve(kind + "/expected.safetensors")).get("logits");
        PeftModel.load(m, DIR.resolve(kind));
        Tensor got;
        try (NoGrad ignored = NoGrad.enter()) {
            got = m.forward(ref.get("input_ids"), ref.get("attention_mask"), ref.get("decoder_input_ids"),
                    ref.get("decoder_attention_mask"));
        }
        double err = maxErr(got, want, ref.get("decoder_attention_mask"));
        assertTrue(err <= 1e-4, kind + ": logits max abs error " + err);
        // the adapter changes the output
        assertTrue(maxErr(got, ref.get("logits"), ref.get("decoder_attention_mask")) > 1e-3, kind + " has an effect");
        GenerationConfig g = GenerationConfig.greedy(5);
        GenerationResult cached = new Generator(m).generate(ref.get("gen.input_ids"), ref.get("gen.attention_mask"), g, true);
        GenerationResult full = new Generator(m).generate(ref.get("gen.input_ids"), ref.get("gen.attention_mask"), g, false);
        assertEquals(full.toString(), cached.toString());
        GenerationConfig beam = GenerationConfig.builder().maxNewTokens(5).numBeams(3).stopTokenIds(1).build();
        assertEquals(new Generator(m).generate(ref.get("gen.input_ids"), ref.get("gen.attention_mask"), beam, false).toString(),
                new Generator(m).generate(ref.get("gen.input_ids"), ref.get("gen.attention_mask"), beam, true).toString());
    }

    @Test
    void freshPrefixTrainsWithTwoSubmodules() throws Exception {
        T5ForConditionalGeneration m = T5ForConditionalGeneration.load(DIR);
        PrefixTuningConfig c = new PrefixTuningConfig();
        c.setNumVirtualTokens(4);
        PeftModel p = Peft.apply(m, c);
        assertEquals(2, ((PrefixTuningConfig) p.activeConfig()).numTransformerSubmodules());
        Map<String, INDArray> ref = SafeTensors.load(DIR.resolve("reference.safetensors"));
        Tensor logits = m.forward(ref.get("input_ids"), ref.get("attention_mask"), ref.get("decoder_input_ids"),
                ref.get("decoder_attention_mask"));
        Ops.sum(Ops.mul(logits, logits)).backward();
        assertEquals(1, p.trainableParameters().size(), p.trainableParameters().keySet().toString());
        p.trainableParameters().values().forEach(t -> {
            assertNotNull(t.grad());
            assertEquals(4, t.shape()[0]);   // prefix tuning: num_virtual_tokens rows
        });
    }

    @Test
    void prefixFolderOfADecoderOnlyModelIsRefused() throws Exception {
        T5ForConditionalGeneration m = T5ForConditionalGeneration.load(DIR);
        Path gpt2Prefix = RepoFixtures.repoRoot().resolve("peft-prompt/src/test/resources/fixtures/prompt/gpt2-prefix");
        Exception e = assertThrows(IllegalArgumentException.class, () -> PeftModel.load(m, gpt2Prefix));
        assertTrue(e.getMessage().contains("num_transformer_submodules 1") && e.getMessage().contains("encoder-decoder"),
                e.getMessage());
    }
}
