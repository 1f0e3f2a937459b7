package org.peft4j.adapter;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.testing.RepoFixtures;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The presets as {@code peft4j compare} sets them up (seed 7, mean pooling, a new two-label head)
 * keep their numerics: the initial tensors equal those dumped before bottleneck adapters moved onto
 * PeftModel ({@code fixtures/bottleneck/presets/<preset>.safetensors}), and the logits, the loss and
 * every trainable tensor's gradient match what scripts/reference/bottleneck_reference.py
 * ({@code presets}, float64 autograd) computes from those tensors, to 1e-4 (gradients 1e-5).
 */
class BottleneckPresetPinTest {

    @ParameterizedTest
    @ValueSource(strings = {"seq_bn", "double_seq_bn", "par_bn"})
    void presetInitLogitsAndGradientsArePinned(String preset) throws Exception {
        Path dir = Fixtures.fixture("bottleneck").resolve("presets");
        Map<String, INDArray> init = SafeTensors.load(dir.resolve(preset + ".safetensors"));
        Map<String, INDArray> want = SafeTensors.load(dir.resolve("expected.safetensors"));
        BertModel enc = (BertModel) RepoFixtures.loadBase("bert", "bert-tiny");
        BertForSequenceClassification m = BertForSequenceClassification.withNewHead(enc, List.of("neg", "pos"),
                BertConfig.Pooling.MEAN, new Rng(7));
        Map<String, Parameter> trainable = PresetSetup.setUp(m, preset, 7);
        assertEquals(init.keySet(), trainable.keySet(), "the trainable tensors under their model keys");
        for (Map.Entry<String, INDArray> e : init.entrySet()) {
            assertArrayEquals(e.getValue().reshape(-1).toFloatVector(), trainable.get(e.getKey()).value().dup().reshape(-1).toFloatVector(), 0f,
                    preset + ": initial " + e.getKey() + " differs from the pre-refactor value");
        }
        m.eval();
        INDArray ids = want.get("input_ids");
        INDArray mask = want.get("attention_mask");
        INDArray types = want.get("token_type_ids");
        Tensor logits = m.forward(ids, mask, types);
        double err = Fixtures.maxAbsDiff(logits.value(), want.get(preset + ".logits"), null);
        assertTrue(err <= 1e-4, preset + ": max |logits - reference| = " + err);
        long b = ids.size(0);
        INDArray labels = Nd4j.create(DataType.INT64, b);
        for (int i = 0; i < b; i++) {
            labels.putScalar(i, i % 2);
        }
        Tensor loss = Ops.crossEntropy(logits, labels, Ops.Reduction.MEAN);
        assertEquals(want.get(preset + ".loss").getDouble(0), loss.value().getDouble(0), 1e-5, preset + ": loss");
        loss.backward();
        double worst = 0;
        for (Map.Entry<String, Parameter> e : trainable.entrySet()) {
            INDArray g = e.getValue().grad();
            INDArray w = want.get(preset + ".grad." + e.getKey());
            double ge = Fixtures.maxAbsDiff(g, w, null);
            worst = Math.max(worst, ge);
            assertTrue(ge <= 1e-5, preset + ": gradient of " + e.getKey() + " differs by " + ge);
        }
        System.out.printf("preset %s: max |logits - python| = %.2e, max |grad - python| = %.2e%n", preset, err, worst);
    }
}
