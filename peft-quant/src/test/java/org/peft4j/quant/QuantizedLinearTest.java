package org.peft4j.quant;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link QuantizedLinear}: forward = linear with the dequantized weight, input/bias gradients, no dense weight kept. */
class QuantizedLinearTest {

    static INDArray gaussian(long seed, double std, long... shape) {
        return GradCheck.random(new Rng(seed), shape).muli(std).castTo(DataType.FLOAT);
    }

    static List<QuantConfig> configs() {
        return List.of(QuantConfig.nf4(), QuantConfig.builder().doubleQuant(false).blockSize(32).build(), QuantConfig.fp4(),
                QuantConfig.builder().type(QuantType.INT8).int8Threshold(0.05f).build());
    }

    @Test
    void forwardIsTheLinearOfTheDequantizedWeight() {
        INDArray w = gaussian(1, 0.02, 48, 80);
        INDArray b = gaussian(2, 0.1, 48);
        INDArray x = gaussian(3, 1.0, 2, 5, 80);
        for (QuantConfig c : configs()) {
            Linear lin = new Linear(w.dup(), b.dup(), false);
            QuantizedLinear q = QuantizedLinear.quantize(lin, c);
            INDArray dense = q.denseWeight();
            float[] expectedW = q.quantizedWeight().dequantize();
            assertEquals(0.0, dense.reshape(-1).sub(Nd4j.createFromArray(expectedW)).amaxNumber().doubleValue(), 0.0,
                    c + ": denseWeight = dequantize");
            Tensor y = q.forward(Tensor.constant(x));
            Tensor ref = Ops.linear(Tensor.constant(x), Tensor.constant(dense), Tensor.constant(b));
            assertEquals(3, y.rank());
            double err = y.value().sub(ref.value()).amaxNumber().doubleValue();
            assertTrue(err < 1e-5, c + ": forward differs from Ops.linear by " + err);
            // and close to the fp32 layer (quantization error only)
            double rel = y.value().sub(lin.forward(Tensor.constant(x)).value()).norm2Number().doubleValue()
                    / ref.value().norm2Number().doubleValue();
            assertTrue(rel < 0.2, c + ": relative output error " + rel);
            // the bias is the same Parameter object; the weight is not a parameter at all
            assertTrue(q.bias() == lin.bias());
            assertEquals(List.of("bias"), List.copyOf(q.namedParameters().keySet()));
        }
    }

    @Test
    void inputGradientMatchesCentralDifferences() {
        for (QuantConfig c : configs()) {
            QuantizedLinear q = new QuantizedLinear(QuantizedLinear.quantizeWeight(gaussian(4, 0.5, 6, 64), c),
                    new Parameter(GradCheck.random(new Rng(5), 6), false));
            INDArray x = GradCheck.random(new Rng(6), 2, 3, 64);
            double worst = GradCheck.of("QuantizedLinear dx " + c, in -> q.forward(in[0]), x).maxElements(120).check();
            assertTrue(worst <= 1.0);
        }
    }

    @Test
    void biasGradientIsTheSumOfOutputGradientsAndWeightGetsNone() {
        QuantizedLinear q = new QuantizedLinear(QuantizedLinear.quantizeWeight(gaussian(7, 0.5, 5, 32), QuantConfig.nf4()),
                new Parameter(gaussian(8, 0.1, 5), true));
        Tensor x = Tensor.variable(gaussian(9, 1, 4, 32));
        Tensor y = q.forward(x);
        INDArray seed = gaussian(10, 1, 4, 5);
        y.backward(seed);
        double err = q.bias().grad().sub(seed.sum(0)).amaxNumber().doubleValue();
        assertTrue(err < 1e-5, "bias grad error " + err);
        // dx = dy · W (dequantized)
        INDArray dx = seed.mmul(q.denseWeight());
        assertTrue(x.grad().sub(dx).amaxNumber().doubleValue() < 1e-4);
    }

    @Test
    void frozenInputAndBiasRecordNoGraph() {
        QuantizedLinear q = new QuantizedLinear(QuantizedLinear.quantizeWeight(gaussian(11, 0.5, 5, 32), QuantConfig.nf4()),
                new Parameter(gaussian(12, 0.1, 5), false));
        Tensor y = q.forward(Tensor.constant(gaussian(13, 1, 4, 32)));
        assertTrue(!y.requiresGrad());
    }

    @Test
    void mergingADenseWeightIntoItIsRefused() {
        QuantizedLinear q = new QuantizedLinear(QuantizedLinear.quantizeWeight(gaussian(14, 0.5, 8, 64), QuantConfig.nf4()), null);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> q.setDenseWeight(q.denseWeight()));
        assertTrue(e.getMessage().contains("dequantiz") && e.getMessage().contains("nf4"), e.getMessage());
        assertNull(q.bias());
    }

    @Test
    void wrongInputWidthIsNamed() {
        QuantizedLinear q = new QuantizedLinear(QuantizedLinear.quantizeWeight(gaussian(15, 0.5, 8, 64), QuantConfig.nf4()), null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> q.forward(Tensor.constant(gaussian(16, 1, 2, 63))));
        assertTrue(e.getMessage().contains("[2, 63]") && e.getMessage().contains("64"), e.getMessage());
    }

    @Test
    void dequantizeGivesAFrozenLinearWithTheSameOutputs() {
        INDArray x = gaussian(17, 1, 3, 64);
        QuantizedLinear q = new QuantizedLinear(QuantizedLinear.quantizeWeight(gaussian(18, 0.5, 8, 64), QuantConfig.fp4()),
                new Parameter(gaussian(19, 0.1, 8), false));
        Linear l = q.dequantize();
        assertTrue(!l.weight().isTrainable());
        assertTrue(l.forward(Tensor.constant(x)).value().sub(q.forward(Tensor.constant(x)).value()).amaxNumber().doubleValue() < 1e-5);
    }

    @Test
    void gpt2Conv1dWeightsAreTransposedBeforeQuantization() {
        INDArray wInOut = gaussian(20, 0.5, 64, 8);       // Conv1D layout [in, out]
        Linear conv = new Linear(wInOut, null, true);
        QuantizedLinear q = QuantizedLinear.quantize(conv, QuantConfig.builder().type(QuantType.INT8).int8Threshold(0).build());
        assertEquals(64, q.inFeatures());
        assertEquals(8, q.outFeatures());
        INDArray x = gaussian(21, 1, 3, 64);
        double rel = q.forward(Tensor.constant(x)).value().sub(conv.forward(Tensor.constant(x)).value()).norm2Number().doubleValue()
                / conv.forward(Tensor.constant(x)).value().norm2Number().doubleValue();
        assertTrue(rel < 0.02, "int8 relative error " + rel);
    }
}
