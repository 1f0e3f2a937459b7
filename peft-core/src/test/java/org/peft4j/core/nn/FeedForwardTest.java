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

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Activations by Hugging Face name, dropout, and the two feed-forward blocks. */
class FeedForwardTest {

    /** Reference values at x = 1 and x = -0.5 computed from the textbook formulas (evaluated with Python's math module). */
    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "gelu, 0.841344746068543, -0.154268769363",
            "gelu_new, 0.841191990607, -0.154285990175",
            "gelu_pytorch_tanh, 0.841191990607, -0.154285990175",
            "relu, 1.0, 0.0",
            "silu, 0.731058578630, -0.188770334399",
            "swish, 0.731058578630, -0.188770334399",
            "tanh, 0.761594155956, -0.462117157260",
            "sigmoid, 0.731058578630, 0.377540668798",
            "identity, 1.0, -0.5"})
    void activationValues(String name, double at1, double atMinusHalf) {
        Activation a = new Activation(name);
        INDArray y = a.forward(Tensor.constant(Nd4j.createFromArray(1.0, -0.5))).value();
        assertEquals(at1, y.getDouble(0), 1e-8, name + "(1)");
        assertEquals(atMinusHalf, y.getDouble(1), 1e-8, name + "(-0.5)");
    }

    @Test
    void unknownActivationIsNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Activation("mish"));
        assertTrue(e.getMessage().contains("mish"));
    }

    @Test
    void dropoutTrainEval() {
        Dropout d = new Dropout(0.5, new Rng(1));
        Tensor x = Tensor.constant(Nd4j.ones(DataType.DOUBLE, 1000));
        INDArray y = d.forward(x).value();
        double zeros = y.eq(0.0).castTo(DataType.DOUBLE).sumNumber().doubleValue();
        assertTrue(zeros > 400 && zeros < 600, "zeros " + zeros);
        assertEquals(2.0, y.maxNumber().doubleValue(), 0.0);
        d.eval();
        assertSame(x, d.forward(x), "identity in eval");
        assertThrows(IllegalArgumentException.class, () -> new Dropout(1.0, new Rng(1)));
    }

    @Test
    void mlpForwardAndGradients() {
        Mlp mlp = NnTestSupport.toDouble(Mlp.create(4, 6, "c_fc", "c_proj", "gelu_new", true, true, 0.0, new Rng(2)));
        assertEquals(List.of("c_fc.weight", "c_fc.bias", "c_proj.weight", "c_proj.bias"), List.copyOf(mlp.namedParameters().keySet()));
        assertEquals(List.of(4L, 6L), java.util.Arrays.stream(mlp.namedParameters().get("c_fc.weight").shape()).boxed().toList());
        INDArray x = NnTestSupport.randn(new Rng(3), 2, 3, 4);
        Linear fc = mlp.child("c_fc", Linear.class);
        Linear proj = mlp.child("c_proj", Linear.class);
        INDArray expected = proj.forward(Ops.geluTanh(fc.forward(Tensor.constant(x)))).value();
        assertTrue(NnTestSupport.maxAbsDiff(expected, mlp.forward(Tensor.constant(x)).value()) < 1e-12);
        NnTestSupport.gradCheck("mlp", mlp, t -> mlp.forward(t[0]), x).run();
    }

    @Test
    void mlpDropoutOnlyInTraining() {
        Mlp mlp = Mlp.create(4, 8, "up", "down", "relu", true, false, 0.3, new Rng(4));
        assertTrue(mlp.child(Mlp.DROPOUT) instanceof Dropout);
        Tensor x = Tensor.constant(NnTestSupport.randn(new Rng(5), 3, 4).castTo(DataType.FLOAT));
        INDArray train = mlp.forward(x).value();
        mlp.eval();
        INDArray eval1 = mlp.forward(x).value();
        INDArray eval2 = mlp.forward(x).value();
        assertEquals(0.0, NnTestSupport.maxAbsDiff(eval1, eval2), 0.0);
        assertNotEquals(0.0, NnTestSupport.maxAbsDiff(train, eval1));
    }

    @Test
    void swiGluForwardAndGradients() {
        SwiGluMlp mlp = NnTestSupport.toDouble(SwiGluMlp.create(4, 5, "silu", false, new Rng(6)));
        assertEquals(List.of("gate_proj.weight", "up_proj.weight", "down_proj.weight"), List.copyOf(mlp.namedParameters().keySet()));
        INDArray x = NnTestSupport.randn(new Rng(7), 2, 3, 4);
        Tensor xt = Tensor.constant(x);
        INDArray expected = mlp.child("down_proj", Linear.class).forward(Ops.mul(
                Ops.silu(mlp.child("gate_proj", Linear.class).forward(xt)),
                mlp.child("up_proj", Linear.class).forward(xt))).value();
        assertTrue(NnTestSupport.maxAbsDiff(expected, mlp.forward(xt).value()) < 1e-12);
        NnTestSupport.gradCheck("swiglu", mlp, t -> mlp.forward(t[0]), x).run();
    }
}
