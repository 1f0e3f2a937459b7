package org.peft4j.core.tensor;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.Ops.Reduction;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/** Every op keeps FLOAT (production) and DOUBLE (gradient checks) for its value and its gradients. */
class OpsDtypeTest {

    private static Map<String, Function<Tensor[], Tensor>> ops() {
        INDArray ids = Nd4j.createFromArray(new int[][]{{0, 2}, {1, 1}});
        Map<String, Function<Tensor[], Tensor>> m = new LinkedHashMap<>();
        // inputs: x [2,2,4], w [3,4], v [4] (positive), e [3,4]
        m.put("matmul", t -> Ops.matmul(t[0], t[1], false, true));
        m.put("matmul2", t -> Ops.matmul(Ops.permute(t[0], 0, 2, 1), t[0]));
        m.put("linear", t -> Ops.linear(t[0], t[1], Ops.slice(t[2], 0, 0, 3)));
        m.put("add", t -> Ops.add(t[0], t[2]));
        m.put("sub", t -> Ops.sub(t[2], t[0]));
        m.put("mul", t -> Ops.mul(t[0], t[2]));
        m.put("div", t -> Ops.div(t[0], t[2]));
        m.put("addScalar", t -> Ops.add(t[0], 1.0));
        m.put("mulScalar", t -> Ops.mul(t[0], 2.0));
        m.put("pow", t -> Ops.pow(t[2], 1.5));
        m.put("neg", t -> Ops.neg(t[0]));
        m.put("exp", t -> Ops.exp(t[0]));
        m.put("log", t -> Ops.log(t[2]));
        m.put("sqrt", t -> Ops.sqrt(t[2]));
        m.put("sum", t -> Ops.sum(t[0]));
        m.put("sumAxes", t -> Ops.sum(t[0], false, 1));
        m.put("mean", t -> Ops.mean(t[0]));
        m.put("meanAxes", t -> Ops.mean(t[0], true, -1));
        m.put("reshape", t -> Ops.reshape(t[0], 4, 4));
        m.put("permute", t -> Ops.permute(t[0], 2, 1, 0));
        m.put("transpose", t -> Ops.transpose(t[0], 0, 1));
        m.put("slice", t -> Ops.slice(t[0], 2, 1, 3));
        m.put("concat", t -> Ops.concat(0, t[1], t[3]));
        m.put("indexSelect", t -> Ops.indexSelect(t[0], 2, Nd4j.createFromArray(3, 3)));
        m.put("embedding", t -> Ops.embedding(t[3], ids));
        m.put("maskedFill", t -> Ops.maskedFill(t[0], Nd4j.createFromArray(1, 0, 0, 1), -5));
        m.put("softmax", t -> Ops.softmax(t[0]));
        m.put("logSoftmax", t -> Ops.logSoftmax(t[0]));
        m.put("layerNorm", t -> Ops.layerNorm(t[0], t[2], t[2], 1e-5));
        m.put("rmsNorm", t -> Ops.rmsNorm(t[0], t[2], 1e-6));
        m.put("gelu", t -> Ops.gelu(t[0]));
        m.put("geluTanh", t -> Ops.geluTanh(t[0]));
        m.put("silu", t -> Ops.silu(t[0]));
        m.put("relu", t -> Ops.relu(t[0]));
        m.put("tanh", t -> Ops.tanh(t[0]));
        m.put("sigmoid", t -> Ops.sigmoid(t[0]));
        m.put("dropout", t -> Ops.dropout(t[0], 0.5, true, new Rng(3)));
        m.put("rotary", t -> Ops.rotary(t[0], Nd4j.ones(2, 4), Nd4j.ones(2, 4)));
        m.put("crossEntropy", t -> Ops.crossEntropy(t[0], Nd4j.createFromArray(new long[][]{{0, 3}, {-100, 1}}), Reduction.MEAN));
        m.put("mse", t -> Ops.mse(t[1], t[3], Reduction.MEAN));
        m.put("klDivergence", t -> Ops.klDivergence(t[1], t[3], 2.0));
        m.put("cosineSimilarity", t -> Ops.cosineSimilarity(t[1], t[3], 1, 1e-8));
        return m;
    }

    @Test
    void floatStaysFloat() {
        checkDtype(DataType.FLOAT);
    }

    @Test
    void doubleStaysDouble() {
        checkDtype(DataType.DOUBLE);
    }

    private static void checkDtype(DataType dt) {
        Rng rng = new Rng(11);
        for (Map.Entry<String, Function<Tensor[], Tensor>> e : ops().entrySet()) {
            Tensor[] in = {
                    Tensor.variable(GradCheck.random(rng, 2, 2, 4).castTo(dt)),
                    Tensor.variable(GradCheck.random(rng, 3, 4).castTo(dt)),
                    Tensor.variable(GradCheck.random(rng, 4).castTo(dt).addi(3.0)),
                    Tensor.variable(GradCheck.random(rng, 3, 4).castTo(dt)),
            };
            Tensor out = e.getValue().apply(in);
            assertEquals(dt, out.value().dataType(), e.getKey() + " value dtype");
            out.backward(Nd4j.onesLike(out.value()));
            boolean any = false;
            for (Tensor t : in) {
                if (t.grad() != null) {
                    any = true;
                    assertEquals(dt, t.grad().dataType(), e.getKey() + " grad dtype");
                    assertFalse(Double.isNaN(t.grad().sumNumber().doubleValue()), e.getKey() + " grad NaN");
                }
            }
            assertNotNull(any ? Boolean.TRUE : null, e.getKey() + " produced no gradient");
        }
    }
}
