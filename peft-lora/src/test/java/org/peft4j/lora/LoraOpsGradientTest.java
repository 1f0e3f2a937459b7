package org.peft4j.lora;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Central-difference gradient checks (DOUBLE, h = 1e-6, |diff| ≤ 1e-6 + 1e-4·|g|) of the fused
 * LoRA, DoRA and LoRA-embedding ops, composed with a linear base layer so the input gradient
 * also flows through the frozen weight.
 */
class LoraOpsGradientTest {

    private static INDArray rnd(long seed, long... shape) {
        return GradCheck.random(new Rng(seed), shape).muli(0.5);
    }

    @Test
    void loraLinearGradients() {
        // inputs: x [2,3,5], W [4,5] (base, checked too), bias [4], A [2,5], B [4,2]
        INDArray x = rnd(1, 2, 3, 5);
        INDArray w = rnd(2, 4, 5);
        INDArray bias = rnd(3, 4);
        INDArray a = rnd(4, 2, 5);
        INDArray b = rnd(5, 4, 2);
        for (double p : new double[]{0.0, 0.3}) {
            double worst = GradCheck.of("loraAdd p=" + p, in -> {
                Tensor base = Ops.linear(in[0], in[1], in[2]);
                // a fresh Rng per evaluation: the same dropout mask every time
                return LoraOps.loraAdd(base, in[0], in[3], in[4], 1.7, p, true, new Rng(77), null);
            }, x, w, bias, a, b).check();
            assertTrue(worst <= 1.0);
        }
    }

    @Test
    void loraLinearGradientsOnRowSubset() {
        INDArray x = rnd(6, 4, 2, 3);
        INDArray a = rnd(7, 2, 3);
        INDArray b = rnd(8, 3, 2);
        INDArray w = rnd(9, 3, 3);
        GradCheck.of("loraAdd rows", in -> {
            Tensor base = Ops.linear(in[0], in[1], null);
            return LoraOps.loraAdd(base, in[0], in[2], in[3], 0.5, 0.25, true, new Rng(5), new int[]{3, 1});
        }, x, w, a, b).check();
    }

    @Test
    void frozenFactorsGetNoGradient() {
        INDArray x = rnd(10, 2, 3);
        INDArray a = rnd(11, 2, 3);
        INDArray b = rnd(12, 4, 2);
        INDArray w = rnd(13, 4, 3);
        GradCheck.of("loraAdd frozen B", in -> {
            Tensor base = Ops.linear(in[0], in[1], null);
            return LoraOps.loraAdd(base, in[0], in[2], in[3], 2.0, 0.0, false, null, null);
        }, x, w, a, b).requiresGrad(true, false, true, false).check();
    }

    @Test
    void doraGradients() {
        // DoRA: magnitude m [4], the norm ‖W + sBA‖ is a constant in backward (PEFT/DoRA paper §4.3),
        // so A and B are checked against a function that detaches it the same way.
        INDArray x = rnd(20, 2, 3, 5);
        INDArray w = rnd(21, 4, 5);
        INDArray bias = rnd(22, 4);
        INDArray a = rnd(23, 2, 5);
        INDArray b = rnd(24, 4, 2);
        INDArray m = rnd(25, 4).addi(2.0);
        for (double p : new double[]{0.0, 0.3}) {
            // x, bias and m: the op's gradients are exact gradients of its output
            GradCheck.of("doraAdd x/bias/m p=" + p, in -> {
                Tensor base = Ops.linear(in[0], Tensor.constant(w), in[1]);
                return LoraOps.doraAdd(base, in[0], w, Tensor.constant(a), Tensor.constant(b), in[2], 1.5, p, true,
                        new Rng(3), null);
            }, x, bias, m).check();
            // A and B: compare with the same output where the norm is computed from fixed A0, B0
            INDArray a0 = a.dup();
            INDArray b0 = b.dup();
            GradCheck.of("doraAdd A/B (norm detached) p=" + p, in -> {
                Tensor base = Ops.linear(Tensor.constant(x), Tensor.constant(w), Tensor.constant(bias));
                INDArray norm = LoraOps.doraWeightNorm(w, a0, b0, 1.5);
                INDArray normNow = LoraOps.doraWeightNorm(w, in[0].value(), in[1].value(), 1.5);
                // rescale m so that m / normNow == m0 / norm0: the output's dependence on A, B through the norm vanishes
                Tensor mAdj = Tensor.constant(m.mul(normNow).div(norm));
                return LoraOps.doraAdd(base, Tensor.constant(x), w, in[0], in[1], mAdj, 1.5, p, true, new Rng(3), null);
            }, a, b).check();
        }
    }

    @Test
    void doraGradientsOnRowSubset() {
        INDArray x = rnd(30, 3, 4);
        INDArray w = rnd(31, 2, 4);
        INDArray m = rnd(32, 2).addi(1.5);
        INDArray a = rnd(33, 1, 4);
        INDArray b = rnd(34, 2, 1);
        GradCheck.of("doraAdd rows x/m", in -> {
            Tensor base = Ops.linear(in[0], Tensor.constant(w), null);
            return LoraOps.doraAdd(base, in[0], w, Tensor.constant(a), Tensor.constant(b), in[1], 0.7, 0.0, false, null,
                    new int[]{2, 0});
        }, x, m).check();
    }

    @Test
    void embeddingGradients() {
        // table E [7,4] (checked too), A [3,7], B [4,3]; ids include the padding id 0
        INDArray e = rnd(40, 7, 4);
        INDArray a = rnd(41, 3, 7);
        INDArray b = rnd(42, 4, 3);
        INDArray ids = Nd4j.createFromArray(new long[][]{{0, 3, 3, 6}, {1, 0, 5, 2}});
        GradCheck.of("embeddingAdd", in -> {
            Tensor base = Ops.embedding(in[0], ids);
            return LoraOps.embeddingAdd(base, ids, in[1], in[2], 0.9, -1, null);
        }, e, a, b).check();
        GradCheck.of("embeddingAdd rows", in -> {
            Tensor base = Ops.embedding(in[0], ids);
            return LoraOps.embeddingAdd(base, ids, in[1], in[2], 0.9, -1, new int[]{1});
        }, e, a, b).check();
    }

    @Test
    void embeddingPaddingColumnGetsNoGradient() {
        INDArray a = rnd(50, 2, 5);
        INDArray b = rnd(51, 3, 2);
        INDArray ids = Nd4j.createFromArray(new long[][]{{0, 1, 0}});
        Tensor ta = Tensor.variable(a);
        Tensor out = LoraOps.embeddingAdd(Tensor.constant(Nd4j.zeros(a.dataType(), 1, 3, 3)), ids, ta,
                Tensor.variable(b), 1.0, 0, null);
        out.backward(Nd4j.onesLike(out.value()));
        assertTrue(ta.grad().getColumn(0).amaxNumber().doubleValue() == 0.0, "padding column must get no gradient");
        assertTrue(ta.grad().getColumn(1).amaxNumber().doubleValue() > 0.0);
    }

    @Test
    void moduleInputGradientsThroughPlainDoraAndConv1dLayers() {
        // the whole LoraLinear module (base + adapter), input gradient checked numerically
        for (boolean fifo : new boolean[]{false, true}) {
            for (boolean dora : new boolean[]{false, true}) {
                INDArray w = rnd(70, 4, 5);
                Linear base = new Linear(fifo ? w.transpose().dup('c') : w, rnd(71, 4), fifo);
                LoraLinear l = new LoraLinear(base);
                l.addAdapter("a", 2, 4, 0.2, false, dora, "true", new Rng(1), new Rng(2), false);
                l.loraB("a").setValue(rnd(72, 4, 2));
                l.eval(); // dropout off: the numerical and analytic passes must see the same function
                GradCheck.of("LoraLinear fifo=" + fifo + " dora=" + dora, in -> l.forward(in[0]), rnd(73, 2, 3, 5)).check();
            }
        }
        org.peft4j.core.nn.Embedding e = new org.peft4j.core.nn.Embedding(rnd(74, 6, 3), -1);
        LoraEmbedding le = new LoraEmbedding(e);
        le.addAdapter("a", 2, 2, false, "false", new Rng(3), false);
        INDArray ids = Nd4j.createFromArray(new long[][]{{1, 5, 1}});
        // the adapter factors as the inputs: a fresh layer wraps the perturbed arrays on every evaluation
        GradCheck.of("LoraEmbedding factors", in -> LoraOps.embeddingAdd(le.baseLayer().forward(ids), ids, in[0], in[1],
                le.settings("a").scaling(), -1, null), le.loraA("a").value(), le.loraB("a").value()).check();
    }

    @Test
    void loraLinearModuleMatchesOpAndFormula() {
        // The module path (base Linear + fused op) against y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ computed by hand in double.
        Linear base = new Linear(rnd(60, 4, 5), rnd(61, 4), false);
        LoraLinear l = new LoraLinear(base);
        l.addAdapter("default", 2, 3, 0.0, false, false, "true", new Rng(1), new Rng(2), false);
        l.loraB("default").setValue(rnd(62, 4, 2));
        INDArray x = rnd(63, 3, 5);
        INDArray y = l.forward(Tensor.constant(x)).value();
        INDArray expected = x.mmul(base.weight().value().transpose()).addRowVector(base.bias().value())
                .add(x.mmul(l.loraA("default").value().transpose()).mmul(l.loraB("default").value().transpose()).mul(1.5));
        TestUtil.assertClose(expected, y, 1e-12, "LoraLinear forward");
    }
}
