package org.peft4j.core.model.t5;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.ModelFamilies;
import org.peft4j.core.model.ModelFamily;
import org.peft4j.core.model.decoder.DecoderFixture;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The tiny T5 checkpoints (v1.0: relu, tied head; v1.1: gated-gelu, untied) against the
 * plain-PyTorch reference {@code scripts/reference/make_t5_fixtures.py}: logits on the real
 * decoder tokens of a padded batch, the encoder output, gradients of a weighted logit sum, and
 * the relative-position bucket tables; all ≤ 1e-4.
 */
class T5ReferenceTest {
    static final double TOL = 1e-4;
    static final Path ROOT = Path.of("src/test/resources/fixtures/t5");

    record Fixture(Path dir, Map<String, INDArray> ref, JsonNode meta) {
        static Fixture load(String name) throws IOException {
            Path dir = ROOT.resolve(name);
            return new Fixture(dir, SafeTensors.load(dir.resolve("reference.safetensors")), JsonFiles.read(dir.resolve("reference.json")));
        }

        INDArray get(String k) {
            return ref.get(k);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"t5-v1_0", "t5-v1_1"})
    void logitsAndEncoderOutputMatchPyTorch(String name) throws IOException {
        Fixture f = Fixture.load(name);
        T5ForConditionalGeneration m = T5ForConditionalGeneration.load(f.dir());
        Tensor enc;
        Tensor logits;
        try (NoGrad ignored = NoGrad.enter()) {
            var e = m.encode(f.get("input_ids"), f.get("attention_mask"));
            enc = e.hidden();
            logits = m.decode(f.get("decoder_input_ids"), f.get("decoder_attention_mask"), e, null, null);
        }
        double e1 = DecoderFixture.maxAbsDiffMasked(enc.value(), f.get("encoder_last_hidden_state"), f.get("attention_mask"));
        double e2 = DecoderFixture.maxAbsDiffMasked(logits.value(), f.get("logits"), f.get("decoder_attention_mask"));
        assertTrue(e1 <= TOL, name + ": encoder output max abs error " + e1);
        assertTrue(e2 <= TOL, name + ": logits max abs error " + e2);
    }

    @ParameterizedTest
    @ValueSource(strings = {"t5-v1_0", "t5-v1_1"})
    void gradientsMatchPyTorch(String name) throws IOException {
        Fixture f = Fixture.load(name);
        T5ForConditionalGeneration m = T5ForConditionalGeneration.load(f.dir());
        Tensor logits = m.forward(f.get("input_ids"), f.get("attention_mask"), f.get("decoder_input_ids"),
                f.get("decoder_attention_mask"));
        INDArray w = f.get("loss_weights").dup();
        INDArray mask = f.get("decoder_attention_mask").castTo(DataType.FLOAT);
        w.muli(mask.reshape(mask.size(0), mask.size(1), 1).broadcast(w.shape()));
        Ops.sum(Ops.mul(logits, Tensor.constant(w))).backward();
        Map<String, Parameter> params = m.namedParameters();
        for (JsonNode g : f.meta().get("gradients")) {
            Parameter p = params.get(g.asText());
            assertNotNull(p, name + ": no parameter " + g.asText());
            assertNotNull(p.grad(), name + ": no gradient for " + g.asText());
            INDArray ref = f.get("grad." + g.asText());
            double scale = Math.max(DecoderFixture.maxAbs(ref), 1e-6);
            double err = DecoderFixture.maxAbsDiff(p.grad(), ref);
            assertTrue(err / scale <= TOL, name + ": gradient of " + g.asText() + " relative error " + err / scale);
        }
    }

    @Test
    void bucketsMatchPyTorch() throws IOException {
        for (String name : new String[]{"t5-v1_0", "t5-v1_1"}) {
            Fixture f = Fixture.load(name);
            T5Config c = T5ForConditionalGeneration.load(f.dir()).config();
            for (boolean bi : new boolean[]{true, false}) {
                INDArray want = f.get(bi ? "buckets.bidirectional" : "buckets.unidirectional");
                INDArray got = T5Attention.bucketIds((int) want.size(0), (int) want.size(1), 0, bi,
                        c.relativeAttentionNumBuckets(), c.relativeAttentionMaxDistance());
                assertEquals(want.castTo(DataType.INT64), got, name + " bidirectional=" + bi);
            }
        }
    }

    @Test
    void registeredAsEncoderDecoder() throws IOException {
        ModelFamily<?> fam = ModelFamilies.forFolder(ROOT.resolve("t5-v1_0"));
        assertEquals(ModelFamily.Kind.ENCODER_DECODER, fam.kind());
        assertTrue(ModelFamilies.find("mt5").isPresent());
        assertTrue(fam.load(ROOT.resolve("t5-v1_1"), 0) instanceof T5ForConditionalGeneration);
    }
}
