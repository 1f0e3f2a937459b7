package org.peft4j.core.tensor;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Concat whose output is concatenated again (a bidirectional LSTM's per-step outputs, then its two
 * directions): the inner backward receives a view of the outer gradient; with unit dimensions
 * ({@code [1, 1, h]} parts) ND4J's sub-view lost its shape before the fix.
 */
class ConcatOfConcatGradTest {
    @Test
    void nestedConcatWithUnitDimensionsHasFiniteDifferenceGradients() {
        Rng rng = new Rng(9);
        INDArray[] in = new INDArray[6];
        for (int i = 0; i < in.length; i++) {
            in[i] = GradCheck.random(rng, 1, 1, 3);
        }
        double worst = GradCheck.of("concat(2, concat(1, …), concat(1, …))", t -> Ops.concat(2,
                Ops.concat(1, t[0], t[1], t[2]), Ops.concat(1, t[3], t[4], t[5])), in).check();
        assertTrue(worst <= 1.0, "scaled error " + worst);
    }
}
