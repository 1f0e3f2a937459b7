package org.peft4j.core.tensor;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Erf;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused FLOAT kernels against the generic ND4J compositions run in DOUBLE (which the
 * gradient checks verify): values and gradients must agree to fp32 accuracy. Tolerances are
 * stated per check.
 */
class KernelsTest {

    private static INDArray randn(long seed, long... shape) {
        Rng r = new Rng(seed);
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        double[] v = new double[(int) n];
        for (int i = 0; i < v.length; i++) {
            v[i] = r.nextGaussian();
        }
        return Nd4j.create(v, shape, DataType.DOUBLE);
    }

    private static double maxAbs(INDArray a, INDArray b) {
        return Transforms.abs(a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE))).maxNumber().doubleValue();
    }

    private static final class Transforms {
        static INDArray abs(INDArray a) {
            return org.nd4j.linalg.ops.transforms.Transforms.abs(a, true);
        }
    }

    @Test
    void expIsAccurateOnItsRangeAndZeroBelow() {
        double worst = 0;
        for (int i = 0; i < 2_000_000; i++) {
            float t = -21f * i / 2_000_000f;   // [0, -21): EXP_MIN itself already maps to 0
            double rel = Math.abs(Kernels.exp(t) / Math.exp(t) - 1);
            worst = Math.max(worst, rel);
        }
        assertTrue(worst < 2e-7, "max relative error of Kernels.exp on (-21, 0]: " + worst);
        assertEquals(1f, Kernels.exp(0f), 0f);
        assertEquals(0f, Kernels.exp(-21.5f), 0f);
        assertEquals(0f, Kernels.exp(-1e9f), 0f);
        assertEquals(0f, Kernels.exp(Float.NEGATIVE_INFINITY), 0f);
    }

    @Test
    void erfMatchesNativeDoubleErf() {
        int n = 400_001;
        double[] z = new double[n];
        for (int i = 0; i < n; i++) {
            z[i] = -6.0 + 12.0 * i / (n - 1);
        }
        INDArray ref = Nd4j.createFromArray(z);
        Nd4j.exec(new Erf(ref, ref));
        double worst = 0;
        for (int i = 0; i < n; i++) {
            worst = Math.max(worst, Math.abs(Kernels.erf((float) z[i]) - ref.getDouble(i)));
        }
        assertTrue(worst < 4e-7, "max absolute error of Kernels.erf on [-6, 6]: " + worst);
        assertEquals(0f, Kernels.erf(0f), 0f);
    }

    /** Runs {@code f} in FLOAT and DOUBLE from the same values, backpropagates the same seed, compares. */
    private static void compare(String name, Function<Tensor[], Tensor> f, double valueTol, double gradTol, INDArray... inputs) {
        Tensor[] d = new Tensor[inputs.length];
        Tensor[] s = new Tensor[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            d[i] = Tensor.variable(inputs[i].castTo(DataType.DOUBLE).dup('c'));
            s[i] = Tensor.variable(inputs[i].castTo(DataType.FLOAT).dup('c'));
        }
        Tensor yd = f.apply(d);
        Tensor ys = f.apply(s);
        assertEquals(DataType.FLOAT, ys.value().dataType(), name);
        double ve = maxAbs(ys.value(), yd.value());
        assertTrue(ve < valueTol, name + ": max |FLOAT − DOUBLE| of the values " + ve + " >= " + valueTol);
        INDArray seed = randn(99, yd.shape());
        yd.backward(seed);
        ys.backward(seed.castTo(DataType.FLOAT));
        for (int i = 0; i < inputs.length; i++) {
            double ge = maxAbs(s[i].grad(), d[i].grad());
            assertTrue(ge < gradTol, name + ": input " + i + " max |FLOAT − DOUBLE| of the gradients " + ge + " >= " + gradTol);
        }
    }

    @Test
    void geluMatchesTheDoubleComposition() {
        INDArray x = randn(1, 8, 33, 65).muli(3.0);
        compare("gelu", t -> Ops.gelu(t[0]), 2e-6, 2e-6, x);
    }

    @Test
    void layerNormMatchesTheDoubleComposition() {
        INDArray x = randn(2, 6, 10, 384).muli(2.0).addi(0.5);
        INDArray g = randn(3, 384).muli(0.2).addi(1.0);
        INDArray b = randn(4, 384).muli(0.1);
        compare("layerNorm", t -> Ops.layerNorm(t[0], t[1], t[2], 1e-12), 2e-5, 5e-5, x, g, b);
        compare("layerNorm without affine", t -> Ops.layerNorm(t[0], null, null, 1e-5), 2e-5, 5e-5, x);
    }

    @Test
    void addLayerNormMatchesAddThenLayerNorm() {
        INDArray a = randn(5, 4, 7, 96);
        INDArray r = randn(6, 4, 7, 96).muli(3.0);
        INDArray g = randn(7, 96).muli(0.2).addi(1.0);
        INDArray b = randn(8, 96).muli(0.1);
        compare("addLayerNorm", t -> FusedOps.addLayerNorm(t[0], t[1], t[2], t[3], 1e-12), 2e-5, 5e-5, a, r, g, b);
        // the DOUBLE run of addLayerNorm is the plain composition: check that one directly too
        Tensor[] x = {Tensor.variable(a.castTo(DataType.FLOAT)), Tensor.variable(r.castTo(DataType.FLOAT)),
                Tensor.constant(g.castTo(DataType.FLOAT)), Tensor.constant(b.castTo(DataType.FLOAT))};
        INDArray fused = FusedOps.addLayerNorm(x[0], x[1], x[2], x[3], 1e-12).value();
        INDArray plain = Ops.layerNorm(Ops.add(Tensor.constant(x[0].value()), Tensor.constant(x[1].value())),
                x[2], x[3], 1e-12).value();
        assertTrue(maxAbs(fused, plain) < 1e-5, "fused vs composed FLOAT");
    }

    @Test
    void addLayerNormGivesBothInputsTheirOwnGradient() {
        // the same tensor as both inputs: its gradient is the sum of both contributions
        INDArray a = randn(9, 3, 16).castTo(DataType.FLOAT);
        Tensor x = Tensor.variable(a.dup());
        Tensor y = FusedOps.addLayerNorm(x, x, null, null, 1e-5);
        INDArray seed = randn(10, 3, 16).castTo(DataType.FLOAT);
        y.backward(seed);
        Tensor xd = Tensor.variable(a.castTo(DataType.DOUBLE));
        Ops.layerNorm(Ops.add(xd, xd), null, null, 1e-5).backward(seed.castTo(DataType.DOUBLE));
        assertTrue(maxAbs(x.grad(), xd.grad()) < 1e-5, "gradient of a tensor used as both inputs");
    }

    @Test
    void kernelsReadViewsWithAnOffset() {
        // a row slice of a larger array starts at a non-zero offset in its buffer
        INDArray big = randn(11, 5, 48).castTo(DataType.FLOAT);
        INDArray rows = big.get(NDArrayIndex.interval(2, 4), NDArrayIndex.all());
        assertTrue(rows.offset() > 0);
        assertTrue(Kernels.usable(rows));
        Tensor y = Ops.gelu(Tensor.constant(rows));
        Tensor ref = Ops.gelu(Tensor.constant(rows.castTo(DataType.DOUBLE)));
        assertTrue(maxAbs(y.value(), ref.value()) < 2e-6);
    }

    @Test
    void nonContiguousInputsTakeTheGenericPath() {
        INDArray x = randn(12, 16, 8).castTo(DataType.FLOAT).transpose();
        assertTrue(!Kernels.usable(x));
        Tensor y = Ops.gelu(Tensor.constant(x));
        Tensor ref = Ops.gelu(Tensor.constant(x.castTo(DataType.DOUBLE)));
        assertTrue(maxAbs(y.value(), ref.value()) < 1e-5);
    }

    @Test
    void floatDropoutDrawsTheSameMaskAsTheGenericPath() {
        INDArray x = randn(13, 7, 300);
        Tensor d = Ops.dropout(Tensor.constant(x), 0.3, true, new Rng(5));        // DOUBLE: generic path
        Tensor f = Ops.dropout(Tensor.constant(x.castTo(DataType.FLOAT)), 0.3, true, new Rng(5));
        assertTrue(maxAbs(f.value(), d.value()) < 1e-5, "same elements kept, same scale");
        Tensor xv = Tensor.variable(x.castTo(DataType.FLOAT));
        Tensor y = Ops.dropout(xv, 0.3, true, new Rng(5));
        INDArray seed = randn(14, 7, 300).castTo(DataType.FLOAT);
        y.backward(seed);
        // d out / d x is the mask itself: out/x where x != 0
        INDArray mask = f.value().div(x.castTo(DataType.FLOAT));
        assertTrue(maxAbs(xv.grad(), seed.mul(mask)) < 1e-5);
    }

    @Test
    void fusedAdamWMatchesTheNd4jPathOverSeveralSteps() {
        // the same parameters and gradients in FLOAT (fused kernel) and DOUBLE (ND4J ops)
        INDArray w0 = randn(20, 70, 130);   // 9,100 elements: several parallel chunks
        java.util.Map<String, org.peft4j.core.nn.Parameter> pf = new java.util.LinkedHashMap<>();
        java.util.Map<String, org.peft4j.core.nn.Parameter> pd = new java.util.LinkedHashMap<>();
        pf.put("w", new org.peft4j.core.nn.Parameter(w0.castTo(DataType.FLOAT)));
        pd.put("w", new org.peft4j.core.nn.Parameter(w0.dup()));
        org.peft4j.core.train.AdamW of = org.peft4j.core.train.AdamW.builder(pf).lr(0.01).betas(0.8, 0.95).eps(1e-3).weightDecay(0.1).build();
        org.peft4j.core.train.AdamW od = org.peft4j.core.train.AdamW.builder(pd).lr(0.01).betas(0.8, 0.95).eps(1e-3).weightDecay(0.1).build();
        for (int step = 0; step < 5; step++) {
            INDArray g = randn(30 + step, 70, 130);
            pf.get("w").accumulateGrad(g.castTo(DataType.FLOAT));
            pd.get("w").accumulateGrad(g);
            of.step();
            od.step();
            of.zeroGrad();
            od.zeroGrad();
        }
        assertTrue(maxAbs(pf.get("w").value(), pd.get("w").value()) < 2e-6, "weights after 5 steps");
        INDArray mf = of.state().tensors().get("w.exp_avg_sq");
        INDArray md = od.state().tensors().get("w.exp_avg_sq");
        assertTrue(maxAbs(mf, md) < 1e-5, "second moments after 5 steps");
    }

    @Test
    void linearBiasGradientMatchesTheDoubleComposition() {
        // the bias gradient is a column sum over 2,304 rows (the FLOAT path sums in a kernel)
        INDArray x = randn(40, 6, 384, 24);
        INDArray w = randn(41, 40, 24).muli(0.1);
        INDArray b = randn(42, 40);
        compare("linear with bias", t -> Ops.linear(t[0], t[1], t[2]), 1e-5, 2e-4, x, w, b);
    }

    @Test
    void parallelForCoversEveryIndexOnce() {
        int n = 100_003;
        int[] hits = new int[n];
        Kernels.parallelFor(n, 1000, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                hits[i]++;
            }
        });
        int[] ones = new int[n];
        java.util.Arrays.fill(ones, 1);
        assertArrayEquals(ones, hits);
    }

    @Test
    void kernelExceptionsReachTheCaller() {
        IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, () ->
                Kernels.parallelFor(10_000, 10, (from, to, w) -> {
                    if (from >= 5_000) {
                        throw new IllegalStateException("boom at " + from);
                    }
                }));
        assertTrue(e.getMessage().startsWith("boom"));
        assertNull(null);
    }
}
