package org.peft4j.prompt;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Numerical gradient checks (double precision) through the LSTM encoder and, whole-model, through the prefix and prompt paths. */
class PromptGradientTest {

    /** Input and all 16 weights of a 2-layer bidirectional LSTM [2, 5, 3] → [2, 5, 8]. */
    @Test
    void lstmGradientsMatchFiniteDifferences() {
        Lstm lstm = new Lstm(3, 4, 2, 0.0, new Rng(3));
        Tensor[] w = lstm.weights();
        INDArray[] inputs = new INDArray[w.length + 1];
        inputs[0] = GradCheck.random(new Rng(5), 2, 5, 3);
        for (int i = 0; i < w.length; i++) {
            inputs[i + 1] = w[i].value().castTo(DataType.DOUBLE).dup();
        }
        double worst = GradCheck.of("Lstm.run", in -> Lstm.run(in[0], Arrays.copyOfRange(in, 1, in.length), 2, 0.0, false, null),
                inputs).maxElements(40).check();
        assertTrue(worst <= 1.0, "worst scaled gradient error " + worst);
    }

    /** A one-step sequence (the concat-free path) and a single layer. */
    @Test
    void singleStepSingleLayerLstmGradients() {
        Lstm lstm = new Lstm(2, 3, 1, 0.0, new Rng(11));
        Tensor[] w = lstm.weights();
        INDArray[] inputs = new INDArray[w.length + 1];
        inputs[0] = GradCheck.random(new Rng(6), 1, 1, 2);
        for (int i = 0; i < w.length; i++) {
            inputs[i + 1] = w[i].value().castTo(DataType.DOUBLE).dup();
        }
        double worst = GradCheck.of("Lstm.run 1 step", in -> Lstm.run(in[0], Arrays.copyOfRange(in, 1, in.length), 1, 0.0, false, null),
                inputs).maxElements(40).check();
        assertTrue(worst <= 1.0, "worst scaled gradient error " + worst);
    }

    /**
     * Whole-model central differences (double precision) through the prefix path: prefix tuning on
     * the GPT-2 and LLaMA-GQA fixtures (learned positions / rotary, grouped-query attention, a
     * right-padded row), d(loss)/d(prompt_embeddings) for entries in several layers' key and value
     * columns; and prompt tuning on a decoder classifier (virtual tokens in front, the pooled
     * index shifted), d(loss)/d(prompt table) and d(loss)/d(score.weight).
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"gpt2, prefix", "llama-gqa, prefix", "gpt2, prompt-cls", "llama-gqa, prompt-cls"})
    void wholeModelGradientsThroughThePromptPath(String fixture, String method) {
        org.peft4j.core.model.decoder.DecoderLM lm = PromptFixtures.decoder(fixture);
        org.peft4j.core.nn.Module model;
        PromptLearningConfig cfg;
        if (method.equals("prefix")) {
            model = lm;
            cfg = new PrefixTuningConfig().setNumVirtualTokens(3);
        } else {
            model = org.peft4j.core.model.decoder.DecoderForSequenceClassification.withNewHead(lm, java.util.List.of("a", "b", "c"),
                    3, new Rng(2));
            cfg = new PromptTuningConfig().setNumVirtualTokens(3);
            cfg.setModulesToSave(java.util.List.of("score"));
        }
        cfg.setSeed(4);
        org.peft4j.core.peft.PeftModel pm = org.peft4j.core.peft.Peft.apply(model, cfg);
        pm.eval();
        for (org.peft4j.core.nn.Parameter p : model.parameters()) {
            p.setValue(p.value().castTo(DataType.DOUBLE));
        }
        INDArray ids = org.nd4j.linalg.factory.Nd4j.createFromArray(new long[][]{{5, 9, 17, 21, 8}, {12, 3, 30, 3, 3}});
        INDArray mask = org.nd4j.linalg.factory.Nd4j.createFromArray(new long[][]{{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}});
        java.util.function.Supplier<Tensor> loss = () -> {
            Tensor logits = method.equals("prefix") ? lm.forward(ids, mask)
                    : ((org.peft4j.core.model.decoder.DecoderForSequenceClassification) model).forward(ids, mask);
            INDArray w = GradCheck.random(new Rng(8), logits.shape());
            if (method.equals("prefix")) {   // padded positions out of the loss
                w.get(org.nd4j.linalg.indexing.NDArrayIndex.point(1), org.nd4j.linalg.indexing.NDArrayIndex.interval(3, 5)).assign(0);
            }
            return org.peft4j.core.tensor.Ops.sum(org.peft4j.core.tensor.Ops.mul(logits, Tensor.constant(w)));
        };
        Map<String, org.peft4j.core.nn.Parameter> params = model.namedParameters();
        java.util.List<String> names = new java.util.ArrayList<>();
        params.forEach((k, p) -> {
            if (p.isTrainable()) {
                names.add(k);
            }
        });
        assertTrue(names.stream().anyMatch(k -> k.contains("prompt_encoder"))
                && (method.equals("prefix") || names.stream().anyMatch(k -> k.startsWith("score."))), names.toString());
        Tensor l0 = loss.get();
        assertEquals(DataType.DOUBLE, l0.value().dataType(), "the loss is computed in double");
        names.forEach(k -> assertEquals(DataType.DOUBLE, params.get(k).value().dataType(), k));
        l0.backward();
        Rng pick = new Rng(13);
        double worst = 0;
        for (String name : names) {
            org.peft4j.core.nn.Parameter p = params.get(name);
            INDArray grad = p.grad().dup();
            INDArray v = p.value();
            for (int k = 0; k < 8; k++) {
                long i = pick.nextInt((int) v.length());
                double orig = v.getDouble(i);
                double lp;
                double lmn;
                v.putScalar(i, orig + 1e-6);
                lp = loss.get().value().getDouble(0);
                v.putScalar(i, orig - 1e-6);
                lmn = loss.get().value().getDouble(0);
                v.putScalar(i, orig);
                double num = (lp - lmn) / 2e-6;
                double err = Math.abs(num - grad.getDouble(i)) / Math.max(1.0, Math.abs(num));
                worst = Math.max(worst, err);
                assertTrue(err < 1e-5, fixture + "/" + method + " " + name + "[" + i + "]: numerical " + num + " vs autograd "
                        + grad.getDouble(i));
            }
        }
        assertTrue(worst < 1e-5, "worst " + worst);
    }

    /** The P-tuning shape: one sequence of n virtual tokens, float weights, backward from a scalar. */
    @Test
    void lstmEncoderBackwardReachesEveryWeight() {
        PromptSource.LstmEncoder enc = new PromptSource.LstmEncoder(4, 16, 16, 2, 0.0, new Rng(1));
        Tensor out = enc.output();
        org.peft4j.core.tensor.Ops.sum(out).backward();
        for (var e : enc.namedParameters().entrySet()) {
            assertTrue(e.getValue().grad() != null && e.getValue().grad().amaxNumber().doubleValue() > 0, e.getKey() + " has a gradient");
        }
    }
}
