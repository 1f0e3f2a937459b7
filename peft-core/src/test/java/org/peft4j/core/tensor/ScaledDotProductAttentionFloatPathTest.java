package org.peft4j.core.tensor;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The FLOAT path of the attention core (fused Java softmax kernels, recycled buffers, hashed
 * dropout mask) against the DOUBLE path, which {@link ScaledDotProductAttentionTest} checks against a naive
 * composition and numerical gradients: values and all input gradients must agree to fp32
 * accuracy (1e-5 absolute) for every mask kind of {@link ScaledDotProductAttentionTest#cases()}.
 */
class ScaledDotProductAttentionFloatPathTest {

    private static double maxAbs(INDArray a, INDArray b) {
        return org.nd4j.linalg.ops.transforms.Transforms.abs(a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE)), false)
                .maxNumber().doubleValue();
    }

    private static INDArray[] qkv(ScaledDotProductAttentionTest.Case c, long seed) {
        Rng rng = new Rng(seed);
        return new INDArray[]{
                GradCheck.random(rng, c.b(), c.h(), c.t(), c.d()),
                GradCheck.random(rng, c.b(), c.hkv(), c.s(), c.d()),
                GradCheck.random(rng, c.b(), c.hkv(), c.s(), c.d())};
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("org.peft4j.core.tensor.ScaledDotProductAttentionTest#cases")
    void floatPathMatchesDoublePath(ScaledDotProductAttentionTest.Case c) {
        INDArray[] in = qkv(c, 21);
        double scale = 1.0 / Math.sqrt(c.d());
        Tensor[] d = new Tensor[3];
        Tensor[] f = new Tensor[3];
        for (int i = 0; i < 3; i++) {
            d[i] = Tensor.variable(in[i].dup());
            f[i] = Tensor.variable(in[i].castTo(DataType.FLOAT));
        }
        Tensor yd = ScaledDotProductAttention.scaledDotProduct(d[0], d[1], d[2], ScaledDotProductAttentionTest.mask(c), scale, 0.0, null, false);
        Tensor yf = ScaledDotProductAttention.scaledDotProduct(f[0], f[1], f[2], ScaledDotProductAttentionTest.mask(c), scale, 0.0, null, false);
        assertEquals(DataType.FLOAT, yf.value().dataType());
        assertTrue(maxAbs(yf.value(), yd.value()) < 1e-5, c + ": values");
        INDArray seed = GradCheck.random(new Rng(5), yd.shape());
        yd.backward(seed);
        yf.backward(seed.castTo(DataType.FLOAT));
        for (int i = 0; i < 3; i++) {
            assertTrue(maxAbs(f[i].grad(), d[i].grad()) < 1e-5, c + ": gradient of input " + i);
        }
    }

    @Test
    void mergedOperandsOfOneTensorMatchTheDoublePath() {
        // GPT-2's layout: q|k|v column blocks of one [B, T, 3C] tensor, causal, merged output
        long b = 2;
        long t = 5;
        long heads = 3;
        long hd = 4;
        long cols = heads * hd;
        INDArray qkv = GradCheck.random(new Rng(8), b, t, 3 * cols);
        Tensor xd = Tensor.variable(qkv.dup());
        Tensor xf = Tensor.variable(qkv.castTo(DataType.FLOAT));
        Tensor[] ys = new Tensor[2];
        Tensor[] xs = {xd, xf};
        for (int i = 0; i < 2; i++) {
            ys[i] = ScaledDotProductAttention.attend(ScaledDotProductAttention.Heads.merged(xs[i], 0, heads, hd), ScaledDotProductAttention.Heads.merged(xs[i], cols, heads, hd),
                    ScaledDotProductAttention.Heads.merged(xs[i], 2 * cols, heads, hd), AttentionMask.causal(0), 0.5, 0.0, null, false, true);
        }
        assertTrue(maxAbs(ys[1].value(), ys[0].value()) < 1e-5);
        INDArray seed = GradCheck.random(new Rng(9), ys[0].shape());
        ys[0].backward(seed);
        ys[1].backward(seed.castTo(DataType.FLOAT));
        assertTrue(maxAbs(xf.grad(), xd.grad()) < 1e-5);
    }

    @Test
    void dropoutMatchesTheCompositionWithTheHashedMask() {
        long b = 2;
        long h = 3;
        long t = 6;
        long d = 4;
        double p = 0.3;
        double scale = 0.5;
        INDArray[] in = {GradCheck.random(new Rng(1), b, h, t, d), GradCheck.random(new Rng(2), b, h, t, d),
                GradCheck.random(new Rng(3), b, h, t, d)};
        Tensor[] f = new Tensor[3];
        for (int i = 0; i < 3; i++) {
            f[i] = Tensor.variable(in[i].castTo(DataType.FLOAT));
        }
        Tensor yf = ScaledDotProductAttention.scaledDotProduct(f[0], f[1], f[2], null, scale, p, new Rng(77), true);
        // the mask the FLOAT path used: the first nextLong of the same generator seeds the hash
        ScaledDotProductAttention.AttnDropout drop = new ScaledDotProductAttention.AttnDropout(p, new Rng(77).nextLong());
        double[] m = new double[(int) (b * h * t * t)];
        int kept = 0;
        for (int i = 0; i < m.length; i++) {
            m[i] = ScaledDotProductAttention.dropFactor(i, drop.seedLo(), drop.seedHi(), drop.threshold(), drop.scale());
            kept += m[i] != 0 ? 1 : 0;
        }
        assertTrue(kept > 0 && kept < m.length, "some weights kept, some dropped");
        INDArray mask = Nd4j.create(m, new long[]{b, h, t, t}, DataType.DOUBLE);
        Tensor[] dd = new Tensor[3];
        for (int i = 0; i < 3; i++) {
            dd[i] = Tensor.variable(in[i].dup());
        }
        Tensor probs = ScaledDotProductAttentionTest.stableSoftmax(Ops.mul(Ops.matmul(dd[0], dd[1], false, true), scale));
        Tensor yd = Ops.matmul(Ops.mul(probs, Tensor.constant(mask)), dd[2]);
        assertTrue(maxAbs(yf.value(), yd.value()) < 1e-5, "values with dropout");
        INDArray seed = GradCheck.random(new Rng(4), yd.shape());
        yd.backward(seed);
        yf.backward(seed.castTo(DataType.FLOAT));
        for (int i = 0; i < 3; i++) {
            assertTrue(maxAbs(f[i].grad(), dd[i].grad()) < 1e-5, "gradient of input " + i + " with dropout");
        }
    }

    @Test
    void hashedDropoutKeepsTheRequestedFractionAndIsSeeded() {
        ScaledDotProductAttention.AttnDropout a = new ScaledDotProductAttention.AttnDropout(0.1, 12345L);
        ScaledDotProductAttention.AttnDropout b = new ScaledDotProductAttention.AttnDropout(0.1, 12346L);
        int n = 1_000_000;
        int kept = 0;
        int same = 0;
        for (int i = 0; i < n; i++) {
            float fa = ScaledDotProductAttention.dropFactor(i, a.seedLo(), a.seedHi(), a.threshold(), a.scale());
            float fb = ScaledDotProductAttention.dropFactor(i, b.seedLo(), b.seedHi(), b.threshold(), b.scale());
            kept += fa != 0 ? 1 : 0;
            same += (fa != 0) == (fb != 0) ? 1 : 0;
        }
        assertEquals(0.9, kept / (double) n, 0.002, "kept fraction");
        // independent masks agree on 0.9² + 0.1² = 0.82 of the positions
        assertEquals(0.82, same / (double) n, 0.003, "two seeds give independent masks");
        assertEquals((float) (1 / 0.9), ScaledDotProductAttention.dropFactor(3, a.seedLo(), a.seedHi(), 0, a.scale()), 0f);
    }

    @Test
    void inferenceDoesNotRecordAndReturnsItsBuffers() {
        INDArray[] in = {GradCheck.random(new Rng(1), 1, 2, 3, 4).castTo(DataType.FLOAT),
                GradCheck.random(new Rng(2), 1, 2, 3, 4).castTo(DataType.FLOAT),
                GradCheck.random(new Rng(3), 1, 2, 3, 4).castTo(DataType.FLOAT)};
        Tensor first;
        try (NoGrad ignored = NoGrad.enter()) {
            Tensor q = Tensor.variable(in[0]);
            first = ScaledDotProductAttention.scaledDotProduct(q, Tensor.variable(in[1]), Tensor.variable(in[2]), null, 0.5, 0.0, null, false);
            // a second call reuses the returned probability buffer and gives the same result
            Tensor second = ScaledDotProductAttention.scaledDotProduct(q, Tensor.variable(in[1]), Tensor.variable(in[2]), null, 0.5, 0.0, null, false);
            assertEquals(0.0, maxAbs(first.value(), second.value()), 0.0);
        }
        assertTrue(!first.requiresGrad());
    }

    @Test
    void backwardTwiceIsRejected() {
        Tensor q = Tensor.variable(GradCheck.random(new Rng(1), 1, 1, 2, 2).castTo(DataType.FLOAT));
        Tensor k = Tensor.constant(GradCheck.random(new Rng(2), 1, 1, 2, 2).castTo(DataType.FLOAT));
        Tensor y = ScaledDotProductAttention.scaledDotProduct(q, k, k, null, 1.0, 0.0, null, false);
        y.backward(Nd4j.onesLike(y.value()));
        // the graph is freed after one backward pass: a second one fails before reaching the core
        assertThrows(IllegalStateException.class, () -> y.backward(Nd4j.onesLike(y.value())));
    }
}
