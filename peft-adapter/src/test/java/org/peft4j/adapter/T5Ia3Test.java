package org.peft4j.adapter;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.t5.T5ForConditionalGeneration;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.testing.RepoFixtures;

import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** IA3 on the tiny T5 with PEFT's T5 defaults: k, v, wo scaled, wo as the feed-forward (input-side) one. */
class T5Ia3Test {
    @Test
    void defaultTargetsAreKVAndWo() throws Exception {
        Path dir = RepoFixtures.core("t5/t5-v1_1");
        T5ForConditionalGeneration m = T5ForConditionalGeneration.load(dir);
        Map<String, INDArray> ref = SafeTensors.load(dir.resolve("reference.safetensors"));
        PeftModel p = Peft.apply(m, new Ia3Config());
        Map<String, Boolean> ff = new TreeMap<>();
        p.baseModel().namedModules().forEach((k, v) -> {
            if (v instanceof Ia3Layer l) {
                ff.put(k, l.isFeedforward());
            }
        });
        // encoder: 2 blocks × (k, v, wo); decoder: 2 blocks × (self k, v; cross k, v; wo)
        assertEquals(2 * 3 + 2 * 5, ff.size(), ff.toString());
        ff.forEach((k, isFf) -> assertEquals(k.endsWith(".wo"), isFf, k));
        assertTrue(ff.containsKey("decoder.block.1.layer.1.EncDecAttention.k"), ff.toString());
        // IA3 vectors start at ones: the model's logits are unchanged
        Tensor got;
        try (NoGrad ignored = NoGrad.enter()) {
            got = m.forward(ref.get("input_ids"), ref.get("attention_mask"), ref.get("decoder_input_ids"),
                    ref.get("decoder_attention_mask"));
        }
        INDArray want = ref.get("logits");
        INDArray mask = ref.get("decoder_attention_mask");
        for (int b = 0; b < mask.size(0); b++) {
            for (int t = 0; t < mask.size(1); t++) {
                if (mask.getLong(b, t) == 1) {
                    for (int v = 0; v < want.size(2); v++) {
                        assertEquals(want.getDouble(b, t, v), got.value().getDouble(b, t, v), 1e-4);
                    }
                }
            }
        }
    }
}
