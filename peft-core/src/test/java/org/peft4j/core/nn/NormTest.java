package org.peft4j.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

class NormTest {

    private static void randomizeParams(Module m, long seed) {
        Rng rng = new Rng(seed);
        for (Parameter p : m.parameters()) {
            p.value().assign(NnTestSupport.randn(rng, p.shape()));
        }
    }

    @Test
    void layerNormForwardAndGradients() {
        LayerNorm ln = NnTestSupport.toDouble(new LayerNorm(6, 1e-5));
        randomizeParams(ln, 1);
        INDArray x = NnTestSupport.randn(new Rng(2), 2, 3, 6);
        INDArray y = ln.forward(Tensor.constant(x)).value();
        INDArray g = ln.weight().value();
        INDArray b = ln.bias().value();
        for (int i = 0; i < 2; i++) {
            for (int t = 0; t < 3; t++) {
                double mean = 0;
                for (int d = 0; d < 6; d++) {
                    mean += x.getDouble(i, t, d) / 6;
                }
                double var = 0;
                for (int d = 0; d < 6; d++) {
                    var += Math.pow(x.getDouble(i, t, d) - mean, 2) / 6;
                }
                for (int d = 0; d < 6; d++) {
                    double e = (x.getDouble(i, t, d) - mean) / Math.sqrt(var + 1e-5) * g.getDouble(d) + b.getDouble(d);
                    assertEquals(e, y.getDouble(i, t, d), 1e-10);
                }
            }
        }
        NnTestSupport.gradCheck("layer norm", ln, t -> ln.forward(t[0]), x).maxElements(36).run();
    }

    @Test
    void forwardResidualIsForwardOfTheSum() {
        // FLOAT: the fused kernel against forward(x + r) (the composed ops), to float rounding
        LayerNorm f = new LayerNorm(16, 1e-12);
        randomizeParams(f, 7);
        Rng rng = new Rng(8);
        INDArray xf = NnTestSupport.randn(rng, 3, 5, 16).castTo(org.nd4j.linalg.api.buffer.DataType.FLOAT);
        INDArray rf = NnTestSupport.randn(rng, 3, 5, 16).castTo(org.nd4j.linalg.api.buffer.DataType.FLOAT);
        INDArray fused = f.forwardResidual(Tensor.constant(xf), Tensor.constant(rf)).value();
        INDArray composed = f.forward(Tensor.constant(xf.add(rf))).value();
        assertEquals(0.0, NnTestSupport.maxAbsDiff(fused, composed), 2e-5);
        // DOUBLE (the composition): equal to forward of the sum, and both inputs get the gradient
        LayerNorm ln = NnTestSupport.toDouble(new LayerNorm(6, 1e-5));
        randomizeParams(ln, 9);
        INDArray x = NnTestSupport.randn(new Rng(10), 2, 3, 6);
        INDArray r = NnTestSupport.randn(new Rng(11), 2, 3, 6);
        assertEquals(0.0, NnTestSupport.maxAbsDiff(ln.forwardResidual(Tensor.constant(x), Tensor.constant(r)).value(),
                ln.forward(Tensor.constant(x.add(r))).value()), 1e-12);
        NnTestSupport.gradCheck("layer norm residual", ln, t -> ln.forwardResidual(t[0], t[1]), x, r).maxElements(36).run();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ln.forwardResidual(Tensor.constant(x), Tensor.constant(NnTestSupport.randn(new Rng(12), 2, 2, 6))));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("[2, 2, 6]") && e.getMessage().contains("[2, 3, 6]"),
                e.getMessage());
    }

    @Test
    void layerNormWithoutBias() {
        LayerNorm ln = NnTestSupport.toDouble(new LayerNorm(4, 1e-12, false));
        assertNull(ln.bias());
        randomizeParams(ln, 3);
        NnTestSupport.gradCheck("layer norm no bias", ln, t -> ln.forward(t[0]), NnTestSupport.randn(new Rng(4), 3, 4)).run();
    }

    @Test
    void rmsNormForwardAndGradients() {
        RMSNorm rms = NnTestSupport.toDouble(new RMSNorm(5, 1e-6));
        randomizeParams(rms, 5);
        INDArray x = NnTestSupport.randn(new Rng(6), 2, 2, 5);
        INDArray y = rms.forward(Tensor.constant(x)).value();
        for (int i = 0; i < 2; i++) {
            for (int t = 0; t < 2; t++) {
                double ms = 0;
                for (int d = 0; d < 5; d++) {
                    ms += Math.pow(x.getDouble(i, t, d), 2) / 5;
                }
                for (int d = 0; d < 5; d++) {
                    double e = x.getDouble(i, t, d) / Math.sqrt(ms + 1e-6) * rms.weight().value().getDouble(d);
                    assertEquals(e, y.getDouble(i, t, d), 1e-10);
                }
            }
        }
        NnTestSupport.gradCheck("rms norm", rms, t -> rms.forward(t[0]), x).run();
    }

    @Test
    void defaultsAndBadShapes() {
        LayerNorm ln = new LayerNorm(3, 1e-12);
        assertEquals(3.0, ln.weight().value().sumNumber().doubleValue(), 0.0);
        assertEquals(0.0, ln.bias().value().sumNumber().doubleValue(), 0.0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ln.forward(Tensor.constant(NnTestSupport.randn(new Rng(1), 2, 4))));
        assertEquals(true, e.getMessage().contains("[2, 4]"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new RMSNorm(3, 1e-6).forward(Tensor.constant(NnTestSupport.randn(new Rng(1), 5))));
    }
}
