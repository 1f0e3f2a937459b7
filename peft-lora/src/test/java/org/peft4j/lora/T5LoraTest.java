package org.peft4j.lora;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.t5.T5ForConditionalGeneration;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.testing.RepoFixtures;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LoRA on the tiny T5: a PEFT-layout folder written by {@code make_t5_fixtures.py} loads and
 * reproduces the reference's logits (≤ 1e-4); without {@code target_modules} LoRA takes PEFT's T5
 * default ({@code q}, {@code v}) in every attention of both stacks, and trains only its matrices.
 */
class T5LoraTest {
    static final Path DIR = RepoFixtures.core("t5/t5-v1_0");

    @Test
    void peftLayoutFolderReproducesReferenceLogits() throws Exception {
        T5ForConditionalGeneration m = T5ForConditionalGeneration.load(DIR);
        Map<String, INDArray> ref = SafeTensors.load(DIR.resolve("reference.safetensors"));
        INDArray want = SafeTensors.load(DIR.resolve("lora/expected.safetensors")).get("logits");
        PeftModel p = PeftModel.load(m, DIR.resolve("lora"));
        Tensor got;
        try (NoGrad ignored = NoGrad.enter()) {
            got = m.forward(ref.get("input_ids"), ref.get("attention_mask"), ref.get("decoder_input_ids"),
                    ref.get("decoder_attention_mask"));
        }
        INDArray mask = ref.get("decoder_attention_mask");
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
        assertTrue(err <= 1e-4, "LoRA T5 logits max abs error " + err);
        assertEquals(2 * (2 + 3 + 3), countLora(p));
    }

    private static int countLora(PeftModel p) {
        return (int) p.baseModel().namedModules().values().stream().filter(x -> x instanceof LoraLinear).count();
    }

    @Test
    void defaultTargetsAreQAndVAndOnlyLoraTrains() throws Exception {
        T5ForConditionalGeneration m = T5ForConditionalGeneration.load(DIR);
        m.train();
        PeftModel p = Peft.apply(m, LoraConfig.builder().r(2).loraAlpha(4).build());
        assertEquals("[q, v]", p.activeConfig().toMap().get("target_modules").toString());
        List<String> wrapped = p.baseModel().namedModules().entrySet().stream().filter(e -> e.getValue() instanceof LoraLinear)
                .map(Map.Entry::getKey).toList();
        assertEquals(2 * (2 + 3 + 3), wrapped.size(), wrapped.toString());
        assertTrue(wrapped.contains("decoder.block.2.layer.1.EncDecAttention.v"), wrapped.toString());
        Map<String, INDArray> ref = SafeTensors.load(DIR.resolve("reference.safetensors"));
        Tensor logits = m.forward(ref.get("input_ids"), ref.get("attention_mask"), ref.get("decoder_input_ids"),
                ref.get("decoder_attention_mask"));
        Ops.sum(Ops.mul(logits, logits)).backward();
        p.trainableParameters().forEach((name, param) -> {
            assertTrue(name.contains("lora_"), name);
            assertNotNull(param.grad(), name);
        });
        assertTrue(m.namedParameters().get("shared.weight").grad() == null, "frozen base weights get no gradient");
    }
}
