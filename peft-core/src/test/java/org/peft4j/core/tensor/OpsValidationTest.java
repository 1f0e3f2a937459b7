package org.peft4j.core.tensor;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.Ops.Reduction;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad input → IllegalArgumentException whose message names the op and the offending shapes. */
class OpsValidationTest {

    private static Tensor t(long... shape) {
        return Tensor.variable(Nd4j.zeros(DataType.DOUBLE, shape));
    }

    private static void fails(Executable call, String... mustContain) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        for (String s : mustContain) {
            assertTrue(e.getMessage().contains(s), () -> "message '" + e.getMessage() + "' lacks '" + s + "'");
        }
    }

    @Test
    void matmul() {
        fails(() -> Ops.matmul(t(2, 3), t(4, 5)), "Ops.matmul", "[2, 3]", "[4, 5]");
        fails(() -> Ops.matmul(t(2, 3), t(2, 3), false, false), "Ops.matmul", "inner");
        fails(() -> Ops.matmul(t(2, 3, 4), t(3, 4, 5)), "Ops.matmul", "batch", "[2, 3, 4]", "[3, 4, 5]");
        fails(() -> Ops.matmul(t(3), t(3, 2)), "Ops.matmul", "[3]");
        fails(() -> Ops.matmul(t(2, 3), t(2, 3, 4)), "Ops.matmul", "[2, 3, 4]");
        fails(() -> Ops.matmul(t(2, 2, 3, 4), t(2, 2, 3, 4), false, false), "Ops.matmul", "[2, 2, 3, 4]");
    }

    @Test
    void linear() {
        fails(() -> Ops.linear(t(2, 3), t(5, 4), null), "Ops.linear", "[2, 3]", "[5, 4]");
        fails(() -> Ops.linear(t(2, 4), t(5, 4), t(4)), "Ops.linear", "bias", "[4]");
        fails(() -> Ops.linear(t(2, 4), t(4), null), "Ops.linear", "[4]");
    }

    @Test
    void broadcasting() {
        fails(() -> Ops.add(t(2, 3), t(4)), "Ops.add", "[2, 3]", "[4]");
        fails(() -> Ops.sub(t(2, 3, 4), t(3, 3)), "Ops.sub", "[2, 3, 4]", "[3, 3]");
        fails(() -> Ops.mul(t(2, 3), t(3, 2)), "Ops.mul");
        fails(() -> Ops.div(t(5), t(4)), "Ops.div");
        fails(() -> Ops.maskedFill(t(2, 3), Nd4j.zeros(2, 4), 0), "Ops.maskedFill");
        fails(() -> Ops.maskedFill(t(3), Nd4j.zeros(2, 3), 0), "Ops.maskedFill", "[2, 3]", "[3]");
    }

    @Test
    void axes() {
        fails(() -> Ops.sum(t(2, 3), false, 2), "Ops.sum", "axis 2", "[2, 3]");
        fails(() -> Ops.mean(t(2, 3), true, -3), "Ops.mean", "axis -3");
        fails(() -> Ops.sum(t(2, 3), true, 1, -1), "Ops.sum", "repeated");
        fails(() -> Ops.permute(t(2, 3, 4), 0, 0, 1), "Ops.permute", "[2, 3, 4]");
        fails(() -> Ops.permute(t(2, 3, 4), 0, 1), "Ops.permute");
        fails(() -> Ops.transpose(t(2, 3), 0, 2), "Ops.transpose", "axis 2");
        fails(() -> Ops.concat(3, t(2, 3), t(2, 3)), "Ops.concat", "axis 3");
        fails(() -> Ops.indexSelect(t(2, 3), 2, Nd4j.createFromArray(0)), "Ops.indexSelect", "axis 2");
        fails(() -> Ops.cosineSimilarity(t(2, 3), t(2, 3), 2, 1e-8), "Ops.cosineSimilarity", "axis 2");
    }

    @Test
    void sliceBounds() {
        fails(() -> Ops.slice(t(2, 3), 1, 2, 4), "Ops.slice", "[2, 4)", "[2, 3]");
        fails(() -> Ops.slice(t(2, 3), 0, -1, 1), "Ops.slice");
        fails(() -> Ops.slice(t(2, 3), 0, 1, 1), "Ops.slice");
        fails(() -> Ops.slice(t(2, 3), 5, 0, 1), "Ops.slice", "axis 5");
    }

    @Test
    void shapes() {
        fails(() -> Ops.reshape(t(2, 3), 4, 2), "Ops.reshape", "[2, 3]", "[4, 2]");
        fails(() -> Ops.reshape(t(2, 3), -1, 4), "Ops.reshape");
        fails(() -> Ops.concat(0, t(2, 3), t(2, 4)), "Ops.concat", "[2, 4]", "[2, 3]");
        fails(() -> Ops.concat(0, t(2, 3), t(2, 3, 1)), "Ops.concat", "rank");
        fails(() -> Ops.concat(0), "Ops.concat");
    }

    @Test
    void indices() {
        fails(() -> Ops.embedding(t(5, 3), Nd4j.createFromArray(1, 5)), "Ops.embedding", "5", "[0, 5)");
        fails(() -> Ops.embedding(t(5, 3), Nd4j.createFromArray(-1)), "Ops.embedding");
        fails(() -> Ops.embedding(t(5, 3), Nd4j.createFromArray(1.5)), "Ops.embedding", "1.5");
        fails(() -> Ops.embedding(t(5), Nd4j.createFromArray(1)), "Ops.embedding", "[5]");
        fails(() -> Ops.indexSelect(t(2, 3), 1, Nd4j.createFromArray(3)), "Ops.indexSelect", "[0, 3)");
    }

    @Test
    void losses() {
        INDArray ok = Nd4j.createFromArray(0, 1);
        fails(() -> Ops.crossEntropy(t(3, 4), ok, Reduction.MEAN), "Ops.crossEntropy", "[2]", "[3, 4]");
        fails(() -> Ops.crossEntropy(t(2, 3, 4), Nd4j.createFromArray(0, 1, 2, 3, 0, 1), Reduction.MEAN), "Ops.crossEntropy", "[2, 3]");
        fails(() -> Ops.crossEntropy(t(2, 4), Nd4j.createFromArray(0, 4), Reduction.SUM), "Ops.crossEntropy", "4", "[0, 4)");
        fails(() -> Ops.crossEntropy(t(2, 4), Nd4j.createFromArray(0, -1), Reduction.SUM), "Ops.crossEntropy", "-1");
        fails(() -> Ops.crossEntropy(t(2, 4), Nd4j.createFromArray(0.5, 1), Reduction.SUM), "Ops.crossEntropy", "integer");
        fails(() -> Ops.mse(t(2, 3), t(3, 2), Reduction.MEAN), "Ops.mse", "[2, 3]", "[3, 2]");
        fails(() -> Ops.klDivergence(t(2, 3), t(2, 4), 1.0), "Ops.klDivergence", "[2, 3]", "[2, 4]");
        fails(() -> Ops.klDivergence(t(2, 3), t(2, 3), 0.0), "Ops.klDivergence", "temperature");
        fails(() -> Ops.cosineSimilarity(t(2, 3), t(2, 4), 1, 1e-8), "Ops.cosineSimilarity", "[2, 3]", "[2, 4]");
    }

    @Test
    void normsActivationsRotary() {
        fails(() -> Ops.layerNorm(t(2, 4), t(3), null, 1e-5), "Ops.layerNorm", "gamma", "[3]", "[2, 4]");
        fails(() -> Ops.layerNorm(t(2, 4), null, t(4, 1), 1e-5), "Ops.layerNorm", "beta");
        fails(() -> Ops.rmsNorm(t(2, 4), t(5), 1e-5), "Ops.rmsNorm", "gamma", "[5]");
        fails(() -> Ops.softmax(Tensor.constant(Nd4j.scalar(1.0))), "Ops.softmax");
        fails(() -> Ops.dropout(t(2), 1.5, true, new Rng(1)), "Ops.dropout", "1.5");
        fails(() -> Ops.dropout(t(2), 0.5, true, null), "Ops.dropout", "Rng");
        fails(() -> Ops.rotary(t(2, 3, 5), Nd4j.zeros(3, 5), Nd4j.zeros(3, 5)), "Ops.rotary", "even");
        fails(() -> Ops.rotary(t(2, 3, 4), Nd4j.zeros(4, 4), Nd4j.zeros(4, 4)), "Ops.rotary", "[4, 4]", "[2, 3, 4]");
    }
}
