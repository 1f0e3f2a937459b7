package org.peft4j.core.nn;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LinearTest {

    @ParameterizedTest(name = "bias={0} fanInFanOut={1}")
    @CsvSource({"true,false", "false,false", "true,true", "false,true"})
    void gradientCheck(boolean bias, boolean fanInFanOut) {
        Linear lin = NnTestSupport.toDouble(new Linear(5, 3, bias, fanInFanOut, new Rng(1)));
        INDArray x = NnTestSupport.randn(new Rng(2), 2, 4, 5);
        int n = NnTestSupport.gradCheck("linear bias=" + bias + " fifo=" + fanInFanOut, lin, t -> lin.forward(t[0]), x)
                .maxElements(100).run();
        assertTrue(n >= 40 + 15, "elements compared: " + n);
    }

    @Test
    void gradientCheckWithNonContiguousInput() {
        Linear lin = NnTestSupport.toDouble(new Linear(4, 3, true, true, new Rng(3)));
        INDArray xt = NnTestSupport.randn(new Rng(4), 2, 4, 3);   // used as its [2, 3, 4] transposed view
        NnTestSupport.gradCheck("linear fifo on a view", lin, t -> lin.forward(Ops.permute(t[0], 0, 2, 1)), xt).run();
    }

    @Test
    void forwardMatchesManualProduct() {
        Linear lin = NnTestSupport.toDouble(new Linear(3, 2, true, new Rng(5)));
        INDArray x = NnTestSupport.randn(new Rng(6), 4, 3);
        INDArray y = lin.forward(Tensor.constant(x)).value();
        INDArray w = lin.weight().value();
        INDArray b = lin.bias().value();
        for (int i = 0; i < 4; i++) {
            for (int o = 0; o < 2; o++) {
                double e = b.getDouble(o);
                for (int k = 0; k < 3; k++) {
                    e += x.getDouble(i, k) * w.getDouble(o, k);
                }
                assertEquals(e, y.getDouble(i, o), 1e-12);
            }
        }
    }

    @Test
    void fanInFanOutEqualsTransposedStandardLinear() {
        Linear conv1d = new Linear(6, 4, true, true, new Rng(7));
        assertEquals(6, conv1d.weight().size(0));
        assertEquals(4, conv1d.weight().size(1));
        Linear std = new Linear(conv1d.weight().value().transpose().dup(), conv1d.bias().value().dup(), false);
        assertEquals(6, std.inFeatures());
        assertEquals(4, std.outFeatures());
        INDArray x = NnTestSupport.randn(new Rng(8), 2, 3, 6).castTo(DataType.FLOAT);
        assertTrue(NnTestSupport.maxAbsDiff(conv1d.forward(Tensor.constant(x)).value(), std.forward(Tensor.constant(x)).value()) < 1e-5);
    }

    @ParameterizedTest(name = "fanInFanOut={0}")
    @CsvSource({"false", "true"})
    void frozenWeightGetsNoGradientButInputDoes(boolean fanInFanOut) {
        Linear frozen = NnTestSupport.toDouble(new Linear(4, 3, true, fanInFanOut, new Rng(9)));
        Linear trainable = NnTestSupport.toDouble(new Linear(4, 3, true, fanInFanOut, new Rng(9)));
        frozen.freeze();
        INDArray x = NnTestSupport.randn(new Rng(10), 2, 5, 4);
        INDArray seed = NnTestSupport.randn(new Rng(11), 2, 5, 3);

        long gemmsBefore = Ops.linearWeightGradMatmuls();
        long inOutBefore = Linear.inOutWeightGradMatmuls();
        Tensor xf = Tensor.variable(x);
        frozen.forward(xf).backward(seed);
        // (a missing gradient buffer alone would not prove it: accumulateGrad drops gradients of frozen tensors)
        assertEquals(gemmsBefore, Ops.linearWeightGradMatmuls(), "no [out, in] weight-gradient matmul for a frozen weight");
        assertEquals(inOutBefore, Linear.inOutWeightGradMatmuls(), "no [in, out] weight-gradient matmul for a frozen weight");
        assertNull(frozen.weight().grad(), "frozen weight has no gradient buffer");
        assertNull(frozen.bias().grad(), "frozen bias has no gradient buffer");
        assertNotNull(xf.grad(), "input gradient still computed");

        Tensor xt = Tensor.variable(x);
        trainable.forward(xt).backward(seed);
        assertNotNull(trainable.weight().grad());
        // control: the trainable twin runs exactly one weight-gradient matmul, counted by its layout's counter
        assertEquals(gemmsBefore + (fanInFanOut ? 0 : 1), Ops.linearWeightGradMatmuls());
        assertEquals(inOutBefore + (fanInFanOut ? 1 : 0), Linear.inOutWeightGradMatmuls());
        assertTrue(NnTestSupport.maxAbsDiff(xf.grad(), xt.grad()) < 1e-12, "same input gradient frozen or not");
        // the frozen layer's input gradient is dy·W
        INDArray w = fanInFanOut ? frozen.weight().value().transpose() : frozen.weight().value();
        INDArray expected = seed.reshape(10, 3).mmul(w).reshape(2, 5, 4);
        assertTrue(NnTestSupport.maxAbsDiff(xf.grad(), expected) < 1e-12);
        // and with a frozen layer and a constant input nothing is recorded at all
        Tensor y = frozen.forward(Tensor.constant(x));
        assertTrue(!y.requiresGrad());
    }

    @ParameterizedTest(name = "fanInFanOut={0}")
    @CsvSource({"false", "true"})
    void initialisationFollowsPyTorchBounds(boolean fanInFanOut) {
        int in = 64;
        int out = 48;
        Linear a = new Linear(in, out, true, fanInFanOut, new Rng(42));
        Linear b = new Linear(in, out, true, fanInFanOut, new Rng(42));
        double bound = 1.0 / Math.sqrt(in);
        INDArray w = a.weight().value();
        assertEquals(DataType.FLOAT, w.dataType());
        assertTrue(w.maxNumber().doubleValue() <= bound && w.minNumber().doubleValue() >= -bound);
        // uniform(-bound, bound): max/min near the bounds, mean ~0, std = bound/√3
        assertTrue(w.maxNumber().doubleValue() > 0.98 * bound && w.minNumber().doubleValue() < -0.98 * bound);
        assertEquals(0.0, w.meanNumber().doubleValue(), 0.05 * bound);
        assertEquals(bound / Math.sqrt(3), w.stdNumber().doubleValue(), 0.03 * bound);
        INDArray bias = a.bias().value();
        assertTrue(bias.amaxNumber().doubleValue() <= bound);
        assertEquals(0.0, NnTestSupport.maxAbsDiff(w, b.weight().value()), 0.0, "same seed, same weights");
        Linear c = new Linear(in, out, true, fanInFanOut, new Rng(43));
        assertTrue(NnTestSupport.maxAbsDiff(w, c.weight().value()) > 0.1 * bound, "different seed, different weights");
    }

    @Test
    void badInputNamesShapes() {
        Linear lin = new Linear(4, 3, false, new Rng(1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> lin.forward(Tensor.constant(Nd4j.zeros(2, 5))));
        assertTrue(e.getMessage().contains("[2, 5]") && e.getMessage().contains("4"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Linear(Nd4j.zeros(3, 4), Nd4j.zeros(4), false));
        assertTrue(e.getMessage().contains("[4]"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Linear(0, 3, true, new Rng(1)));
    }

    @Test
    void withoutRngWeightsStartAtZero() {
        Linear lin = new Linear(3, 2, true, true, null);
        assertEquals(0.0, lin.weight().value().amaxNumber().doubleValue(), 0.0);
        assertEquals(3, lin.weight().size(0));
        MultiHeadAttention m = MultiHeadAttention.builder(4, 2).build();
        assertEquals(0.0, m.child("q_proj", Linear.class).weight().value().amaxNumber().doubleValue(), 0.0);
        assertEquals(0.0, new Embedding(5, 2, null).weight().value().amaxNumber().doubleValue(), 0.0);
    }

    @Test
    void accessorsAndNames() {
        Linear lin = new Linear(4, 3, true, new Rng(1));
        assertEquals(4, lin.inFeatures());
        assertEquals(3, lin.outFeatures());
        assertEquals(java.util.List.of("weight", "bias"), new java.util.ArrayList<>(lin.namedParameters().keySet()));
        Linear noBias = new Linear(4, 3, false, new Rng(1));
        assertNull(noBias.bias());
        assertEquals(java.util.List.of("weight"), new java.util.ArrayList<>(noBias.namedParameters().keySet()));
    }
}
