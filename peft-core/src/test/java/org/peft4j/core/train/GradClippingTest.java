package org.peft4j.core.train;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Parameter;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GradClippingTest {

    private static Parameter withGrad(float[] g) {
        Parameter p = new Parameter(Nd4j.zeros(g.length));
        p.accumulateGrad(Nd4j.createFromArray(g));
        return p;
    }

    @Test
    void clipsToMaxNormAndReturnsTheNormBefore() {
        Parameter a = withGrad(new float[]{3f, 0f});
        Parameter b = withGrad(new float[]{0f, 4f, 12f});
        Parameter none = new Parameter(Nd4j.zeros(2));   // no gradient: ignored
        double norm = GradClipping.clipGradNorm(List.of(a, b, none), 6.5);
        assertEquals(13.0, norm, 1e-6);                  // √(9 + 16 + 144)
        double coef = 6.5 / (13.0 + 1e-6);
        assertEquals(3 * coef, a.grad().getDouble(0), 1e-6);
        assertEquals(12 * coef, b.grad().getDouble(2), 1e-6);
        assertEquals(6.5, GradClipping.globalNorm(List.of(a, b)), 1e-5);
    }

    @Test
    void leavesSmallGradientsAlone() {
        Parameter a = withGrad(new float[]{0.3f, -0.4f});
        assertEquals(0.5, GradClipping.clipGradNorm(List.of(a), 1.0), 1e-6);
        assertEquals(0.3, a.grad().getDouble(0), 1e-7);
        assertEquals(-0.4, a.grad().getDouble(1), 1e-7);
    }

    @Test
    void nonFiniteNormIsReported() {
        Parameter a = withGrad(new float[]{Float.NaN, 1f});
        assertTrue(Double.isNaN(GradClipping.clipGradNorm(List.of(a), 1.0)));
        assertThrows(IllegalArgumentException.class, () -> GradClipping.clipGradNorm(List.of(a), 0.0));
    }
}
