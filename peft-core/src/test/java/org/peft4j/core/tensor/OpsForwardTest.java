package org.peft4j.core.tensor;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.Ops.Reduction;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Forward values against independently known numbers: closed forms evaluated by hand or with
 * the standard library's math (erf, tanh, exp, log), never by the code under test.
 */
class OpsForwardTest {

    private static Tensor d(double... v) {
        return Tensor.constant(Nd4j.createFromArray(v));
    }

    private static Tensor d2(double[][] v) {
        return Tensor.constant(Nd4j.createFromArray(v));
    }

    private static void assertValues(double[] expected, Tensor t, double tol) {
        double[] got = t.value().dup('c').reshape(t.value().length()).toDoubleVector();
        assertArrayEquals(expected, got, tol, () -> "got " + Arrays.toString(got));
    }

    @Test
    void geluExactErfForm() {
        // 0.5·x·(1 + erf(x/√2)): gelu(1) = Φ(1) = 0.8413447460685429
        assertValues(new double[]{0.8413447460685429, -0.15865525393145707, 1.9544997361036416, 0.0},
                Ops.gelu(d(1, -1, 2, 0)), 1e-12);
        // fp32 within 1e-6
        Tensor f = Ops.gelu(Tensor.constant(Nd4j.createFromArray(1f)));
        assertEquals(DataType.FLOAT, f.value().dataType());
        assertEquals(0.8413447460685429, f.value().getDouble(0), 1e-6);
    }

    @Test
    void geluTanhForm() {
        // GPT-2 gelu_new at 1: 0.5·(1 + tanh(√(2/π)·1.044715)) = 0.8411919906082768
        assertValues(new double[]{0.8411919906082768, -0.15428599017485606}, Ops.geluTanh(d(1, -0.5)), 1e-12);
    }

    @Test
    void siluReluTanhSigmoid() {
        double s1 = 0.7310585786300049;                                    // σ(1) = 1/(1+e⁻¹)
        assertValues(new double[]{s1, 0.0}, Ops.silu(d(1, 0)), 1e-12);
        assertValues(new double[]{0, 0, 2.5}, Ops.relu(d(-1, 0, 2.5)), 0);
        assertValues(new double[]{0.46211715726000974, 0}, Ops.tanh(d(0.5, 0)), 1e-12);
        assertValues(new double[]{s1, 0.5}, Ops.sigmoid(d(1, 0)), 1e-12);
    }

    @Test
    void softmaxAndLogSoftmax() {
        double[] p = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};  // e^i / Σ e^j
        double[] lp = {-2.40760596444438, -1.4076059644443801, -0.4076059644443803};
        assertValues(p, Ops.softmax(d(1, 2, 3)), 1e-12);
        assertValues(lp, Ops.logSoftmax(d(1, 2, 3)), 1e-12);
        // numerically stable: shifting by ±1000 changes nothing and gives no inf/NaN
        assertValues(p, Ops.softmax(d(1001, 1002, 1003)), 1e-12);
        assertValues(lp, Ops.logSoftmax(d(-999, -998, -997)), 1e-12);
        assertValues(new double[]{0.5, 0.5, 0.5, 0.5}, Ops.softmax(d2(new double[][]{{7, 7}, {-3, -3}})), 1e-12);
        // fp32 with large logits
        Tensor f = Ops.softmax(Tensor.constant(Nd4j.createFromArray(80f, 81f, 82f)));
        assertEquals(p[2], f.value().getDouble(2), 1e-6);
    }

    @Test
    void softmaxOfVeryNegativeRowsIsFiniteInDoubleAndFloat() {
        // rows whose maximum is about -1e9 (fully masked attention rows); ND4J's native softmax gives
        // NaN for these in DOUBLE. Expected values by hand: a uniform row, and e^{x_i - max} / Σ.
        double e1 = Math.exp(-1.0);
        double[][] rows = {{-1e9, -1e9, -1e9}, {-1e9, -1e9, -1e9 + 1}, {-1e9, 0, -1e9}, {-1e9, -1e9, -1e9}};
        double[] expected = {1 / 3.0, 1 / 3.0, 1 / 3.0, e1 / (2 * e1 + 1), e1 / (2 * e1 + 1), 1 / (2 * e1 + 1), 0, 1, 0,
                1 / 3.0, 1 / 3.0, 1 / 3.0};
        assertValues(expected, Ops.softmax(d2(rows)), 1e-12);
        assertValues(new double[]{0.5, 0.5}, Ops.softmax(d(-1e9, -1e9)), 1e-12);
        // rank 3 and a permuted view take the same path
        INDArray r3 = Nd4j.createFromArray(rows).reshape(2, 2, 3);
        assertValues(expected, Ops.softmax(Tensor.constant(r3)), 1e-12);
        INDArray perm = Nd4j.createFromArray(rows).transpose().dup('c').transpose();   // f-order view of the same rows
        assertValues(expected, Ops.softmax(Tensor.constant(perm)), 1e-12);
        // fp32 (native op): -1e9 + 1 rounds to -1e9, so the second row is uniform there too
        Tensor f = Ops.softmax(Tensor.constant(Nd4j.createFromArray(rows).castTo(DataType.FLOAT)));
        assertEquals(DataType.FLOAT, f.value().dataType());
        assertValues(new double[]{1 / 3.0, 1 / 3.0, 1 / 3.0, 1 / 3.0, 1 / 3.0, 1 / 3.0, 0, 1, 0, 1 / 3.0, 1 / 3.0, 1 / 3.0},
                f, 1e-6);
    }

    @Test
    void layerNormOfSmallVector() {
        // [1,2,3,4]: mean 2.5, biased variance 1.25, eps 1e-5
        double[] xhat = {-1.3416354199689269, -0.447211806656309, 0.447211806656309, 1.3416354199689269};
        assertValues(xhat, Ops.layerNorm(d(1, 2, 3, 4), null, null, 1e-5), 1e-12);
        Tensor y = Ops.layerNorm(d(1, 2, 3, 4), d(1, 2, 1, -1), d(0, 0, 1, 0.5), 1e-5);
        assertValues(new double[]{xhat[0], 2 * xhat[1], xhat[2] + 1, -xhat[3] + 0.5}, y, 1e-12);
    }

    @Test
    void rmsNormOfSmallVector() {
        // mean(x²) = 7.5 for [1,2,3,4]
        double[] n = {0.3651483473268884, 0.7302966946537768, 1.0954450419806652, 1.4605933893075536};
        assertValues(n, Ops.rmsNorm(d(1, 2, 3, 4), null, 1e-6), 1e-12);
        assertValues(new double[]{2 * n[0], n[1], 0, -n[3]}, Ops.rmsNorm(d(1, 2, 3, 4), d(2, 1, 0, -1), 1e-6), 1e-12);
    }

    @Test
    void matmulByHand() {
        Tensor a = d2(new double[][]{{1, 2}, {3, 4}});
        Tensor b = d2(new double[][]{{5, 6}, {7, 8}});
        assertValues(new double[]{19, 22, 43, 50}, Ops.matmul(a, b), 0);
        assertValues(new double[]{26, 30, 38, 44}, Ops.matmul(a, b, true, false), 0);    // aᵀb
        assertValues(new double[]{17, 23, 39, 53}, Ops.matmul(a, b, false, true), 0);    // abᵀ
        assertValues(new double[]{23, 31, 34, 46}, Ops.matmul(a, b, true, true), 0);     // aᵀbᵀ
        // batched [2,2,2]: second batch is 2·a and b
        INDArray ab = Nd4j.concat(0, a.value().reshape(1, 2, 2), a.value().mul(2).reshape(1, 2, 2));
        INDArray bb = Nd4j.concat(0, b.value().reshape(1, 2, 2), b.value().reshape(1, 2, 2));
        assertValues(new double[]{19, 22, 43, 50, 38, 44, 86, 100}, Ops.matmul(Tensor.constant(ab), Tensor.constant(bb)), 0);
        // [B,T,in]·[in,out] with shared b
        Tensor shared = Ops.matmul(Tensor.constant(ab), b);
        assertArrayEquals(new long[]{2, 2, 2}, shared.shape());
        assertValues(new double[]{19, 22, 43, 50, 38, 44, 86, 100}, shared, 0);
    }

    @Test
    void linearByHand() {
        // x [1,2]·Wᵀ with W [[1,0],[1,1],[0,2]] + b [0.5, 0, -1]
        Tensor y = Ops.linear(d2(new double[][]{{3, 4}}), d2(new double[][]{{1, 0}, {1, 1}, {0, 2}}), d(0.5, 0, -1));
        assertArrayEquals(new long[]{1, 3}, y.shape());
        assertValues(new double[]{3.5, 7, 7}, y, 0);
    }

    @Test
    void broadcastingArithmetic() {
        Tensor col = Tensor.constant(Nd4j.createFromArray(1.0, 2.0).reshape(2, 1));
        Tensor row = d(10, 20, 30);
        assertValues(new double[]{11, 21, 31, 12, 22, 32}, Ops.add(col, row), 0);
        assertValues(new double[]{-9, -19, -29, -8, -18, -28}, Ops.sub(col, row), 0);
        assertValues(new double[]{10, 20, 30, 20, 40, 60}, Ops.mul(row, col), 0);
        assertValues(new double[]{0.1, 0.05, 1.0 / 30, 0.2, 0.1, 2.0 / 30}, Ops.div(col, row), 1e-15);
        assertValues(new double[]{3, 4}, Ops.add(d(1, 2), 2.0), 0);
        assertValues(new double[]{-2, -4}, Ops.mul(d(1, 2), -2.0), 0);
        assertValues(new double[]{8, 0.125}, Ops.pow(d(2, 0.5), 3.0), 1e-15);
        assertValues(new double[]{0.5, 2}, Ops.pow(d(0.25, 4), 0.5), 1e-15);
        assertValues(new double[]{-1, 2}, Ops.neg(d(1, -2)), 0);
        assertValues(new double[]{1, Math.E}, Ops.exp(d(0, 1)), 1e-15);
        assertValues(new double[]{0, 1}, Ops.log(d(1, Math.E)), 1e-15);
        assertValues(new double[]{3, 0.5}, Ops.sqrt(d(9, 0.25)), 0);
    }

    @Test
    void reductions() {
        Tensor x = d2(new double[][]{{1, 2, 3}, {4, 5, 6}});
        assertEquals(21, Ops.sum(x).value().getDouble(0), 0);
        assertEquals(3.5, Ops.mean(x).value().getDouble(0), 0);
        assertValues(new double[]{5, 7, 9}, Ops.sum(x, false, 0), 0);
        assertArrayEquals(new long[]{2, 1}, Ops.sum(x, true, -1).shape());
        assertValues(new double[]{6, 15}, Ops.sum(x, true, -1), 0);
        assertValues(new double[]{2, 5}, Ops.mean(x, false, 1), 0);
        assertArrayEquals(new long[]{1, 1}, Ops.mean(x, true).shape());
        assertEquals(0, Ops.sum(x).rank());
    }

    @Test
    void shapeOps() {
        Tensor x = Tensor.constant(Nd4j.arange(24).castTo(DataType.DOUBLE).reshape(2, 3, 4));   // x[i,j,k] = 12i+4j+k
        Tensor p = Ops.permute(x, 2, 0, 1);
        assertArrayEquals(new long[]{4, 2, 3}, p.shape());
        assertEquals(12 + 8 + 3, p.value().getDouble(3, 1, 2), 0);
        Tensor r = Ops.reshape(p, 4, -1);                                   // c-order copy of the permuted view
        assertArrayEquals(new long[]{4, 6}, r.shape());
        assertEquals(3 + 12 + 8, r.value().getDouble(3, 5), 0);
        assertArrayEquals(new long[]{2, 4, 3}, Ops.transpose(x, 1, 2).shape());
        Tensor s = Ops.slice(x, 2, 1, 3);
        assertArrayEquals(new long[]{2, 3, 2}, s.shape());
        assertEquals(12 + 4 + 2, s.value().getDouble(1, 1, 1), 0);
        Tensor c = Ops.concat(1, x, Ops.slice(x, 1, 0, 1));
        assertArrayEquals(new long[]{2, 4, 4}, c.shape());
        assertEquals(12 + 3, c.value().getDouble(1, 3, 3), 0);
        Tensor sel = Ops.indexSelect(x, 1, Nd4j.createFromArray(2, 2, 0));
        assertArrayEquals(new long[]{2, 3, 4}, sel.shape());
        assertEquals(12 + 8 + 1, sel.value().getDouble(1, 1, 1), 0);
        assertEquals(12 + 0 + 1, sel.value().getDouble(1, 2, 1), 0);
    }

    @Test
    void embeddingLooksUpRows() {
        Tensor w = d2(new double[][]{{0, 0}, {1, 10}, {2, 20}});
        Tensor e = Ops.embedding(w, Nd4j.createFromArray(new long[][]{{2, 0}, {1, 2}}));
        assertArrayEquals(new long[]{2, 2, 2}, e.shape());
        assertValues(new double[]{2, 20, 0, 0, 1, 10, 2, 20}, e, 0);
        Tensor e1 = Ops.embedding(w, Nd4j.scalar(1));
        assertArrayEquals(new long[]{2}, e1.shape());
    }

    @Test
    void maskedFillSelectsAndSurvivesInfinities() {
        Tensor x = d2(new double[][]{{1, 2, 3}, {4, 5, 6}});
        INDArray causal = Nd4j.createFromArray(new double[][]{{0, 1, 1}, {0, 0, 1}});
        Tensor once = Ops.maskedFill(x, causal, Double.NEGATIVE_INFINITY);
        Tensor twice = Ops.maskedFill(once, Nd4j.createFromArray(new double[]{0, 0, 1}).reshape(1, 3), Double.NEGATIVE_INFINITY);
        double ninf = Double.NEGATIVE_INFINITY;
        assertValues(new double[]{1, ninf, ninf, 4, 5, ninf}, twice, 0);
        // softmax([4, 5]) = [1−σ(1), σ(1)]
        assertValues(new double[]{1, 0, 0, 1 - 0.7310585786300049, 0.7310585786300049, 0}, Ops.softmax(twice), 1e-15);
    }

    @Test
    void dropoutIsInvertedAndDeterministic() {
        Tensor x = Tensor.constant(Nd4j.ones(DataType.DOUBLE, 100, 100));
        Tensor a = Ops.dropout(x, 0.3, true, new Rng(5));
        Tensor b = Ops.dropout(x, 0.3, true, new Rng(5));
        Tensor c = Ops.dropout(x, 0.3, true, new Rng(6));
        assertEquals(a.value(), b.value());
        assertNotEquals(a.value(), c.value());
        double[] v = a.value().reshape(10000).toDoubleVector();
        int zeros = 0;
        for (double e : v) {
            if (e == 0) {
                zeros++;
            } else {
                assertEquals(1 / 0.7, e, 1e-12);
            }
        }
        // Bernoulli(0.3) over 10,000 draws with a fixed seed: σ ≈ 46, so ±300 is > 6σ
        assertTrue(zeros > 2700 && zeros < 3300, "zeros=" + zeros);
        assertSame(x, Ops.dropout(x, 0.3, false, new Rng(5)));
        assertSame(x, Ops.dropout(x, 0.0, true, new Rng(5)));
        assertValues(new double[]{0, 0}, Ops.dropout(d(1, 2), 1.0, true, new Rng(1)), 0);
    }

    @Test
    void rotaryHuggingFaceLayout() {
        // x = [1,2,3,4], rotate_half(x) = [-3,-4,1,2]; cos = 0.5, sin = 0.25 everywhere
        INDArray cos = Nd4j.valueArrayOf(new long[]{1, 4}, 0.5, DataType.DOUBLE);
        INDArray sin = Nd4j.valueArrayOf(new long[]{1, 4}, 0.25, DataType.DOUBLE);
        Tensor out = Ops.rotary(d2(new double[][]{{1, 2, 3, 4}}), cos, sin);
        assertValues(new double[]{-0.25, 0, 1.75, 2.5}, out, 1e-15);
        // a real rotation by θ keeps the norm of every (x_i, x_{i+D/2}) pair
        double th = 0.7;
        INDArray c2 = Nd4j.valueArrayOf(new long[]{1, 2}, Math.cos(th), DataType.DOUBLE);
        INDArray s2 = Nd4j.valueArrayOf(new long[]{1, 2}, Math.sin(th), DataType.DOUBLE);
        Tensor rot = Ops.rotary(d2(new double[][]{{1, 0}}), c2, s2);
        assertValues(new double[]{Math.cos(th), Math.sin(th)}, rot, 1e-15);
    }

    @Test
    void viewsGiveTheSameValuesAsContiguousCopies() {
        Rng rng = new Rng(23);
        // [2,3,4] views: permuted from [4,2,3] and from [3,4,2]
        INDArray p1 = GradCheck.random(rng, 4, 2, 3).permute(1, 2, 0);
        INDArray p2 = GradCheck.random(rng, 3, 4, 2).permute(2, 0, 1);
        INDArray vec = GradCheck.random(rng, 8).get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 2, 8));   // strided [4]
        INDArray w = GradCheck.random(rng, 4, 5).transpose();                                                     // [5,4] view
        java.util.Map<String, java.util.function.Function<Tensor[], Tensor>> ops = new java.util.LinkedHashMap<>();
        ops.put("add", t -> Ops.add(t[0], t[1]));
        ops.put("sub bcast", t -> Ops.sub(t[0], t[2]));
        ops.put("mul", t -> Ops.mul(t[0], t[1]));
        ops.put("div bcast", t -> Ops.div(t[0], Ops.add(Ops.exp(t[2]), 1.0)));
        ops.put("matmul", t -> Ops.matmul(t[0], t[1], false, true));
        ops.put("matmul shared", t -> Ops.matmul(t[0], t[3], false, true));
        ops.put("linear", t -> Ops.linear(t[0], t[3], null));
        ops.put("softmax", t -> Ops.softmax(t[0]));
        ops.put("logSoftmax", t -> Ops.logSoftmax(t[1]));
        ops.put("layerNorm", t -> Ops.layerNorm(t[0], t[2], t[2], 1e-5));
        ops.put("rmsNorm", t -> Ops.rmsNorm(t[1], t[2], 1e-6));
        ops.put("gelu", t -> Ops.gelu(t[0]));
        ops.put("geluTanh", t -> Ops.geluTanh(t[0]));
        ops.put("silu", t -> Ops.silu(t[1]));
        ops.put("relu", t -> Ops.relu(t[1]));
        ops.put("tanh", t -> Ops.tanh(t[0]));
        ops.put("sigmoid", t -> Ops.sigmoid(t[0]));
        ops.put("pow", t -> Ops.pow(t[0], 3.0));
        ops.put("sum axes", t -> Ops.sum(t[0], false, 0, 2));
        ops.put("mean axes", t -> Ops.mean(t[1], true, 1));
        ops.put("reshape", t -> Ops.reshape(t[0], 6, 4));
        ops.put("slice", t -> Ops.slice(t[0], 1, 1, 3));
        ops.put("concat", t -> Ops.concat(2, t[0], t[1]));
        ops.put("indexSelect", t -> Ops.indexSelect(t[0], 2, Nd4j.createFromArray(3, 0, 3)));
        ops.put("maskedFill", t -> Ops.maskedFill(t[0], Nd4j.createFromArray(1, 0, 0, 1), 9));
        ops.put("dropout", t -> Ops.dropout(t[0], 0.5, true, new Rng(1)));
        ops.put("crossEntropy", t -> Ops.crossEntropy(t[0], Nd4j.createFromArray(new int[][]{{0, 1, 3}, {2, -100, 1}}), Reduction.NONE));
        ops.put("mse", t -> Ops.mse(t[0], t[1], Reduction.NONE));
        ops.put("kl", t -> Ops.klDivergence(t[0], t[1], 2.0));
        ops.put("cosine", t -> Ops.cosineSimilarity(t[0], t[1], 1, 1e-8));
        INDArray[] views = {p1, p2, vec, w};
        for (java.util.Map.Entry<String, java.util.function.Function<Tensor[], Tensor>> e : ops.entrySet()) {
            Tensor[] tv = new Tensor[views.length];
            Tensor[] tc = new Tensor[views.length];
            for (int i = 0; i < views.length; i++) {
                tv[i] = Tensor.constant(views[i]);
                tc[i] = Tensor.constant(views[i].dup('c'));
            }
            double[] fromView = e.getValue().apply(tv).value().dup('c').reshape(-1).toDoubleVector();
            double[] fromCopy = e.getValue().apply(tc).value().dup('c').reshape(-1).toDoubleVector();
            assertArrayEquals(fromCopy, fromView, 1e-12, e.getKey());
        }
        // embedding reads rows of a transposed weight view
        INDArray wt = GradCheck.random(rng, 3, 6).transpose();                                                    // [6,3]
        INDArray ids = Nd4j.createFromArray(5, 0, 5, 2);
        assertArrayEquals(Ops.embedding(Tensor.constant(wt.dup('c')), ids).value().dup().reshape(-1).toDoubleVector(),
                Ops.embedding(Tensor.constant(wt), ids).value().dup().reshape(-1).toDoubleVector(), 0);
    }

    @Test
    void rotaryReadsOffsetTableViewsCorrectly() {
        Rng rng = new Rng(17);
        INDArray cosTable = GradCheck.random(rng, 9, 4);
        INDArray sinTable = GradCheck.random(rng, 9, 4);
        INDArray x = GradCheck.random(rng, 2, 5, 4);
        INDArray cosView = cosTable.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(3, 8), org.nd4j.linalg.indexing.NDArrayIndex.all());
        INDArray sinView = sinTable.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(3, 8), org.nd4j.linalg.indexing.NDArrayIndex.all());
        Tensor fromViews = Ops.rotary(Tensor.constant(x), cosView, sinView);
        // direct formula on plain Java numbers: out[.., t, i] = x·cos[3+t, i] + rot(x)[i]·sin[3+t, i]
        double[] expected = new double[40];
        for (int b = 0; b < 2; b++) {
            for (int t = 0; t < 5; t++) {
                for (int i = 0; i < 4; i++) {
                    double rot = i < 2 ? -x.getDouble(b, t, i + 2) : x.getDouble(b, t, i - 2);
                    expected[(b * 5 + t) * 4 + i] = x.getDouble(b, t, i) * cosTable.getDouble(3 + t, i)
                            + rot * sinTable.getDouble(3 + t, i);
                }
            }
        }
        assertValues(expected, fromViews, 1e-14);
    }

    @Test
    void crossEntropyHandExample() {
        Tensor logits = d2(new double[][]{{1, 2, 3}, {1, 2, 3}, {5, 0, 0}});
        // −log softmax: target 2 → 0.40760596444438, target 0 → 2.40760596444438
        INDArray t = Nd4j.createFromArray(2, 0, -100);
        assertEquals(1.40760596444438, Ops.crossEntropy(logits, t, Reduction.MEAN).value().getDouble(0), 1e-12);
        assertEquals(2.81521192888876, Ops.crossEntropy(logits, t, Reduction.SUM).value().getDouble(0), 1e-12);
        assertValues(new double[]{0.40760596444438, 2.40760596444438, 0}, Ops.crossEntropy(logits, t, Reduction.NONE), 1e-12);
    }

    @Test
    void crossEntropyAllIgnoredIsZeroWithZeroGradient() {
        Tensor logits = Tensor.variable(Nd4j.createFromArray(new double[][]{{1, 2}, {3, 4}}));
        Tensor loss = Ops.crossEntropy(logits, Nd4j.createFromArray(-100, -100), Reduction.MEAN);
        assertEquals(0.0, loss.value().getDouble(0), 0);
        loss.backward();
        assertEquals(0.0, logits.grad().amaxNumber().doubleValue(), 0);
        assertFalse(Double.isNaN(logits.grad().sumNumber().doubleValue()));
    }

    @Test
    void mseByHand() {
        assertEquals(5.0 / 3, Ops.mse(d(1, 2, 3), d(1, 1, 1), Reduction.MEAN).value().getDouble(0), 1e-15);
        assertEquals(5.0, Ops.mse(d(1, 2, 3), d(1, 1, 1), Reduction.SUM).value().getDouble(0), 0);
        assertValues(new double[]{0, 1, 4}, Ops.mse(d(1, 2, 3), d(1, 1, 1), Reduction.NONE), 0);
    }

    @Test
    void klDivergenceByHand() {
        // p_t = softmax([ln 3, 0]) = [0.75, 0.25], p_s = [0.5, 0.5]:
        // KL = 0.75·ln 1.5 + 0.25·ln 0.5 = 0.13081203594113697
        double kl = 0.13081203594113697;
        assertEquals(kl, Ops.klDivergence(d(0, 0), d(Math.log(3), 0), 1.0).value().getDouble(0), 1e-12);
        // T = 2 with teacher logits doubled gives the same distributions, times T² = 4
        assertEquals(4 * kl, Ops.klDivergence(d(0, 0), d(2 * Math.log(3), 0), 2.0).value().getDouble(0), 1e-12);
        // batchmean: two rows, one identical (KL 0) → kl / 2
        Tensor s = d2(new double[][]{{0, 0}, {1, 2}});
        Tensor t = d2(new double[][]{{Math.log(3), 0}, {1, 2}});
        assertEquals(kl / 2, Ops.klDivergence(s, t, 1.0).value().getDouble(0), 1e-12);
    }

    @Test
    void cosineSimilarityByHand() {
        Tensor a = d2(new double[][]{{1, 0}, {3, 4}, {0, 0}});
        Tensor b = d2(new double[][]{{1, 1}, {-3, -4}, {1, 0}});
        Tensor c = Ops.cosineSimilarity(a, b, 1, 1e-8);
        assertArrayEquals(new long[]{3}, c.shape());
        assertValues(new double[]{Math.sqrt(0.5), -1, 0}, c, 1e-12);
        // norms clamped separately (current torch): 0.25 / (max(0.5, 1)·max(0.5, 1)) = 0.25;
        // the older max(‖a‖·‖b‖, eps) form would give 0.25 / 1 as well, so also check one norm above eps
        Tensor small = Ops.cosineSimilarity(d(0.5, 0), d(0.5, 0), 0, 1.0);
        assertEquals(0.25, small.value().getDouble(0), 1e-15);
        // a = [0.5, 0], b = [4, 0], eps = 1: separate clamps give 2/(1·4) = 0.5; max(‖a‖·‖b‖, 1) would give 1
        assertEquals(0.5, Ops.cosineSimilarity(d(0.5, 0), d(4, 0), 0, 1.0).value().getDouble(0), 1e-15);
    }
}
