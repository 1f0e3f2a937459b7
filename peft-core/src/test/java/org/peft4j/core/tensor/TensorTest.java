package org.peft4j.core.tensor;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Autograd semantics of {@link Tensor} together with {@link Ops}. */
class TensorTest {

    private static double[] vec(INDArray a) {
        return a.dup('c').reshape(a.length()).toDoubleVector();
    }

    @Test
    void gradientsAccumulateAcrossTwoUsesOfATensor() {
        Tensor x = Tensor.variable(Nd4j.createFromArray(1.0, -2.0, 3.0));
        Tensor c = Tensor.constant(Nd4j.createFromArray(4.0, 5.0, 6.0));
        // y = Σ(x·c) + Σ(x·c) → dy/dx = 2c
        Tensor y = Ops.add(Ops.sum(Ops.mul(x, c)), Ops.sum(Ops.mul(x, c)));
        y.backward();
        assertArrayEquals(new double[]{8, 10, 12}, vec(x.grad()), 0);
        // x used twice in one op: Σ(x + x) → 2
        Tensor z = Tensor.variable(Nd4j.createFromArray(1.0, 2.0));
        Ops.sum(Ops.add(z, z)).backward();
        assertArrayEquals(new double[]{2, 2}, vec(z.grad()), 0);
    }

    @Test
    void sharedIntermediateDiamond() {
        // h = 3x; y = Σ h·h = 9 Σ x² → dy/dx = 18x
        Tensor x = Tensor.variable(Nd4j.createFromArray(1.0, 2.0));
        Tensor h = Ops.mul(x, 3.0);
        Ops.sum(Ops.mul(h, h)).backward();
        assertArrayEquals(new double[]{18, 36}, vec(x.grad()), 1e-12);
        assertNull(h.grad(), "intermediate gradients are released after backward");
    }

    @Test
    void leafGradientsAccumulateAcrossBackwardCalls() {
        Tensor x = Tensor.variable(Nd4j.createFromArray(1.0, 2.0));
        Ops.sum(Ops.mul(x, 2.0)).backward();
        Ops.sum(Ops.mul(x, 3.0)).backward();
        assertArrayEquals(new double[]{5, 5}, vec(x.grad()), 0);
        x.zeroGrad();
        assertNull(x.grad());
    }

    @Test
    void tensorsWithoutRequiresGradGetNoBuffer() {
        Tensor x = Tensor.variable(Nd4j.createFromArray(new double[][]{{1, 2}, {3, 4}}));
        Tensor c = Tensor.constant(Nd4j.createFromArray(new double[][]{{1, 0}, {0, 1}}));
        Tensor y = Ops.sum(Ops.gelu(Ops.matmul(x, c)));
        y.backward();
        assertNotNull(x.grad());
        assertNull(c.grad());
        assertFalse(c.requiresGrad());
    }

    @Test
    void opResultsOfConstantsRecordNothing() {
        Tensor c = Tensor.constant(Nd4j.createFromArray(1.0, 2.0));
        Tensor y = Ops.exp(Ops.mul(c, 2.0));
        assertFalse(y.requiresGrad());
        assertTrue(y.isLeaf());
        assertThrows(IllegalStateException.class, () -> Ops.sum(y).backward());
    }

    @Test
    void noGradScopeRecordsNoGraphAndRestoresState() {
        Tensor x = Tensor.variable(Nd4j.createFromArray(1.0, 2.0));
        assertTrue(GradMode.isEnabled());
        try (NoGrad outer = NoGrad.enter()) {
            Tensor y = Ops.mul(x, 2.0);
            assertFalse(y.requiresGrad());
            assertTrue(y.isLeaf());
            assertArrayEquals(new double[]{2, 4}, vec(y.value()), 0);
            try (NoGrad inner = NoGrad.enter()) {
                assertFalse(GradMode.isEnabled());
            }
            assertFalse(GradMode.isEnabled(), "closing the inner scope keeps the outer one");
        }
        assertTrue(GradMode.isEnabled());
        assertTrue(Ops.mul(x, 2.0).requiresGrad());
    }

    @Test
    void linearWithFrozenWeightComputesDxButNoWeightGradient() {
        Tensor x = Tensor.variable(Nd4j.createFromArray(new double[][]{{1, 2, 3}, {4, 5, 6}}));
        Tensor w = Tensor.constant(Nd4j.createFromArray(new double[][]{{1, 0, 0}, {0, 1, 1}}));   // frozen [2,3]
        Tensor b = Tensor.constant(Nd4j.createFromArray(0.5, -0.5));
        long before = Ops.linearWeightGradMatmuls();
        Ops.sum(Ops.linear(x, w, b)).backward();
        assertEquals(before, Ops.linearWeightGradMatmuls(), "no weight-gradient matmul for a frozen weight");
        assertNull(w.grad());
        assertNull(b.grad());
        // dx = 1·W summed over outputs = [1, 1, 1] per row
        assertArrayEquals(new double[]{1, 1, 1, 1, 1, 1}, vec(x.grad()), 0);

        Tensor wt = Tensor.variable(w.value().dup());
        Ops.sum(Ops.linear(x, wt, null)).backward();
        assertEquals(before + 1, Ops.linearWeightGradMatmuls());
        // dW = 1ᵀ·x = column sums of x, per output row
        assertArrayEquals(new double[]{5, 7, 9, 5, 7, 9}, vec(wt.grad()), 0);
    }

    @Test
    void backwardOnNonScalarWithoutSeedThrows() {
        Tensor x = Tensor.variable(Nd4j.createFromArray(1.0, 2.0));
        Tensor y = Ops.mul(x, 2.0);
        assertThrows(IllegalStateException.class, y::backward);
        y.backward(Nd4j.createFromArray(1.0, 10.0));
        assertArrayEquals(new double[]{2, 20}, vec(x.grad()), 0);
    }

    @Test
    void leafGradientIsAnIndependentBuffer() {
        // two leaves receiving the same upstream array must not share a gradient buffer
        Tensor a = Tensor.variable(Nd4j.createFromArray(1.0, 2.0));
        Tensor b = Tensor.variable(Nd4j.createFromArray(3.0, 4.0));
        Ops.sum(Ops.add(a, b)).backward();
        a.grad().muli(100);
        assertArrayEquals(new double[]{1, 1}, vec(b.grad()), 0);
    }

    @Test
    void gradientOfViewLeafHasTheViewShape() {
        INDArray base = Nd4j.createFromArray(new double[][]{{1, 2, 3}, {4, 5, 6}});
        Tensor xt = Tensor.variable(base.transpose());                 // [3,2] view
        Ops.sum(Ops.mul(xt, xt)).backward();
        assertArrayEquals(new long[]{3, 2}, xt.grad().shape());
        assertArrayEquals(vec(base.transpose().mul(2)), vec(xt.grad()), 0);
    }

    @Test
    void floatGraphEndToEnd() {
        Tensor x = Tensor.variable(Nd4j.rand(DataType.FLOAT, 2, 3));
        Tensor w = Tensor.variable(Nd4j.rand(DataType.FLOAT, 4, 3));
        Tensor loss = Ops.mean(Ops.gelu(Ops.linear(x, w, null)));
        loss.backward();
        assertEquals(DataType.FLOAT, w.grad().dataType());
        assertArrayEquals(new long[]{4, 3}, w.grad().shape());
    }

    @Test
    void embeddingGradientWithManyRepeatedIdsMatchesAPlainSum() {
        // 4096 ids into 7 rows of width 96, FLOAT: duplicate rows must add up exactly once each
        // (a racy multi-threaded scatter would lose updates)
        int n = 4096;
        int vocab = 7;
        int dim = 96;
        Rng rng = new Rng(3);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = rng.nextInt(vocab);
        float[] g = new float[n * dim];
        for (int i = 0; i < g.length; i++) g[i] = (float) ((i % 13) - 6) / 8f;   // exact in fp32 sums
        Tensor w = Tensor.variable(Nd4j.zeros(DataType.FLOAT, vocab, dim));
        Tensor out = Ops.embedding(w, Nd4j.createFromArray(ids).reshape(64, 64));
        out.backward(Nd4j.createFromArray(g).reshape(64, 64, dim));
        double[] expected = new double[vocab * dim];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < dim; j++) expected[ids[i] * dim + j] += g[i * dim + j];
        }
        assertArrayEquals(expected, vec(w.grad()), 0);
    }

    @Test
    void maskedFillOnInputWithInfinitiesHasSelectGradient() {
        double ninf = Double.NEGATIVE_INFINITY;
        Tensor x = Tensor.variable(Nd4j.createFromArray(new double[][]{{1, ninf, 3}, {4, 5, 6}}));
        INDArray mask = Nd4j.createFromArray(new double[]{0, 1, 1}).reshape(1, 3);
        Tensor y = Ops.maskedFill(x, mask, -2.0);
        assertArrayEquals(new double[]{1, -2, -2, 4, -2, -2}, vec(y.value()), 0);
        y.backward(Nd4j.createFromArray(new double[][]{{1, 2, 3}, {4, 5, 6}}));
        assertArrayEquals(new double[]{1, 0, 0, 4, 0, 0}, vec(x.grad()), 0);
    }

    @Test
    void linearWeightGradientAccumulatesAcrossMicroBatches() {
        Tensor w = Tensor.variable(Nd4j.createFromArray(new double[][]{{1, 2}, {3, 4}}));
        Tensor x1 = Tensor.constant(Nd4j.createFromArray(new double[][]{{1, 0}}));
        Tensor x2 = Tensor.constant(Nd4j.createFromArray(new double[][]{{0, 2}}));
        Ops.sum(Ops.linear(x1, w, null)).backward();
        INDArray first = w.grad();
        Ops.sum(Ops.linear(x2, w, null)).backward();              // accumulated in place into the same buffer
        assertArrayEquals(new double[]{1, 2, 1, 2}, vec(w.grad()), 0);
        assertArrayEquals(new double[]{1, 2, 1, 2}, vec(first), 0);
    }
}
