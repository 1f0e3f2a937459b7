package org.peft4j.core.model.decoder;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.generate.GenerationConfig;
import org.peft4j.core.model.generate.GenerationResult;
import org.peft4j.core.model.generate.Generator;
import org.peft4j.core.model.gpt2.Gpt2LMHeadModel;
import org.peft4j.core.model.llama.LlamaForCausalLM;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Tensor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every decoder fixture against its independent PyTorch reference
 * ({@code scripts/reference/make_decoder_fixtures.py}): logits and hidden states on the real
 * (mask = 1) tokens of a padded batch, gradients of a weighted logit sum, greedy continuations.
 */
class DecoderReferenceTest {
    private static final Logger LOG = LoggerFactory.getLogger(DecoderReferenceTest.class);
    /** Max abs error allowed on logits and hidden states (fp32 vs fp32, different op order). */
    static final double LOGIT_TOL = 1e-4;
    /** Max abs gradient error allowed, relative to the largest reference gradient entry of that weight. */
    static final double GRAD_REL_TOL = 1e-4;

    static DecoderLM load(String family, Path dir) throws IOException {
        return family.equals("gpt2") ? Gpt2LMHeadModel.load(dir) : LlamaForCausalLM.load(dir);
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama-gqa", "llama-headdim", "qwen2", "mistral"})
    void logitsAndHiddenStatesMatchPyTorch(String name) throws IOException {
        DecoderFixture f = DecoderFixture.load(name);
        DecoderLM m = load(f.meta.get("family").asText(), f.dir);
        DecoderOutput out;
        try (NoGrad ignored = NoGrad.enter()) {
            out = m.forward(f.ids(), f.mask(), null, true);
        }
        double err = DecoderFixture.maxAbsDiffMasked(out.logits().value(), f.ref.get("logits"), f.mask());
        LOG.info("{}: logits max abs error {} (max |logit| {})", name, err, DecoderFixture.maxAbs(f.ref.get("logits")));
        assertTrue(err <= LOGIT_TOL, name + ": logits max abs error " + err);
        List<Tensor> hs = out.hiddenStates();
        assertEquals(m.numLayers() + 1, hs.size());
        for (int i = 0; i < hs.size(); i++) {
            double e = DecoderFixture.maxAbsDiffMasked(hs.get(i).value(), f.ref.get("hidden_states." + i), f.mask());
            assertTrue(e <= LOGIT_TOL, name + ": hidden state " + i + " max abs error " + e);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama-gqa", "llama-headdim", "qwen2", "mistral"})
    void gradientsMatchPyTorch(String name) throws IOException {
        DecoderFixture f = DecoderFixture.load(name);
        DecoderLM m = load(f.meta.get("family").asText(), f.dir);
        Tensor loss = f.loss(m.forward(f.ids(), f.mask()));
        loss.backward();
        Map<String, Parameter> params = m.namedParameters();
        for (String g : f.gradientNames()) {
            Parameter p = params.get(g);
            assertNotNull(p, name + ": no parameter " + g);
            assertNotNull(p.grad(), name + ": no gradient for " + g);
            INDArray ref = f.ref.get("grad." + g);
            double scale = Math.max(DecoderFixture.maxAbs(ref), 1e-6);
            double err = DecoderFixture.maxAbsDiff(p.grad(), ref);
            LOG.info("{}: grad {} max abs error {} (max |grad| {}, relative {})", name, g, err, scale, err / scale);
            assertTrue(err / scale <= GRAD_REL_TOL, name + ": gradient of " + g + " relative error " + err / scale);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama-gqa", "llama-headdim", "qwen2", "mistral"})
    void greedyContinuationMatchesPyTorchWithAndWithoutCache(String name) throws IOException {
        DecoderFixture f = DecoderFixture.load(name);
        DecoderLM m = load(f.meta.get("family").asText(), f.dir);
        INDArray expected = f.ref.get("gen.output_ids");
        int n = (int) expected.size(1);
        for (boolean cache : new boolean[]{true, false}) {
            GenerationResult r = new Generator(m).generate(f.ref.get("gen.prompt_ids"), f.ref.get("gen.prompt_mask"),
                    GenerationConfig.greedy(n), cache);
            for (int b = 0; b < expected.size(0); b++) {
                int[] want = expected.getRow(b).toIntVector();
                assertArrayEquals(want, r.tokens(b), name + " row " + b + " cache=" + cache);
            }
        }
    }
}
