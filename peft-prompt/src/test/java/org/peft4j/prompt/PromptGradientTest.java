package org.peft4j.prompt;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Numerical gradient checks (double precision) through the LSTM encoder. */
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
