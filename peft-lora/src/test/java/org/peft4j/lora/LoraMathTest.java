package org.peft4j.lora;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.lora.TestUtil.assertClose;

/**
 * Forward formulas and initializations, each recomputed independently in the test (double
 * precision, plain loops or ND4J ops rather than the code under test).
 */
class LoraMathTest {

    private static INDArray rnd(long seed, long... shape) {
        return GradCheck.random(new Rng(seed), shape).muli(0.5);
    }

    private static Linear linear(long seed, int out, int in, boolean fifo) {
        INDArray w = rnd(seed, out, in);
        return new Linear(fifo ? w.transpose().dup('c') : w, rnd(seed + 1, out), fifo);
    }

    /** x·Wᵀ + b with W [out, in], by explicit loops. */
    private static double[][] affine(double[][] x, double[][] w, double[] b) {
        double[][] y = new double[x.length][w.length];
        for (int n = 0; n < x.length; n++) {
            for (int o = 0; o < w.length; o++) {
                double s = b == null ? 0 : b[o];
                for (int i = 0; i < w[o].length; i++) {
                    s += x[n][i] * w[o][i];
                }
                y[n][o] = s;
            }
        }
        return y;
    }

    private static double[][] mat(INDArray a) {
        return a.castTo(DataType.DOUBLE).toDoubleMatrix();
    }

    private static double[][] matmul(double[][] a, double[][] b) {
        double[][] c = new double[a.length][b[0].length];
        for (int i = 0; i < a.length; i++) {
            for (int k = 0; k < b.length; k++) {
                for (int j = 0; j < b[0].length; j++) {
                    c[i][j] += a[i][k] * b[k][j];
                }
            }
        }
        return c;
    }

    @Test
    void rsLoraScalesByAlphaOverSqrtRank() {
        for (boolean rs : new boolean[]{false, true}) {
            Linear base = linear(1, 6, 5, false);
            LoraLinear l = new LoraLinear(base);
            l.addAdapter("a", 4, 12, 0.0, rs, false, "true", new Rng(1), null, false);
            double expectedScaling = rs ? 12 / Math.sqrt(4) : 12 / 4.0;
            assertEquals(expectedScaling, l.settings("a").scaling(), 0.0);
            l.loraB("a").setValue(rnd(3, 6, 4));
            INDArray x = rnd(4, 3, 5);
            double[][] y = mat(l.forward(Tensor.constant(x)).value());
            double[][] ba = matmul(mat(l.loraB("a").value()), mat(l.loraA("a").value()));
            double[][] wEff = mat(base.weight().value());
            for (int o = 0; o < wEff.length; o++) {
                for (int i = 0; i < wEff[0].length; i++) {
                    wEff[o][i] += expectedScaling * ba[o][i];
                }
            }
            double[][] ref = affine(mat(x), wEff, base.bias().value().toDoubleVector());
            assertClose(Nd4j.createFromArray(ref), Nd4j.createFromArray(y), 1e-12, "rsLoRA=" + rs);
        }
    }

    @Test
    void doraForwardMatchesPaperFormula() {
        for (boolean fifo : new boolean[]{false, true}) {
            Linear base = linear(10, 4, 6, fifo);
            LoraLinear l = new LoraLinear(base);
            l.addAdapter("d", 2, 4, 0.0, false, true, "true", new Rng(2), null, false);
            double[][] w = mat(l.baseWeightOutIn());
            // magnitude starts at the row norms of W (B = 0)
            double[] m0 = l.magnitude("d").value().toDoubleVector();
            for (int o = 0; o < w.length; o++) {
                double n = 0;
                for (double v : w[o]) {
                    n += v * v;
                }
                assertEquals(Math.sqrt(n), m0[o], 1e-12, "initial magnitude row " + o);
            }
            l.loraB("d").setValue(rnd(11, 4, 2));
            l.magnitude("d").setValue(rnd(12, 4).addi(2.0));
            double s = 2.0;
            INDArray x = rnd(13, 2, 3, 6);
            double[][] y = mat(l.forward(Tensor.constant(x)).value().reshape(6, 4));
            // y = (m / ‖W + sBA‖_row) ⊙ (x·(W + sBA)ᵀ) + b
            double[][] ba = matmul(mat(l.loraB("d").value()), mat(l.loraA("d").value()));
            double[] m = l.magnitude("d").value().toDoubleVector();
            double[][] v = new double[4][6];
            for (int o = 0; o < 4; o++) {
                double n = 0;
                for (int i = 0; i < 6; i++) {
                    v[o][i] = w[o][i] + s * ba[o][i];
                    n += v[o][i] * v[o][i];
                }
                n = Math.sqrt(n);
                for (int i = 0; i < 6; i++) {
                    v[o][i] *= m[o] / n;
                }
            }
            double[][] ref = affine(mat(x.reshape(6, 6)), v, base.bias().value().toDoubleVector());
            assertClose(Nd4j.createFromArray(ref), Nd4j.createFromArray(y), 1e-12, "DoRA forward fifo=" + fifo);
        }
    }

    @Test
    void defaultInitIsKaimingUniformAThenZeroB() {
        LoraLinear l = new LoraLinear(linear(20, 7, 9, false));
        l.addAdapter("a", 3, 3, 0.0, false, false, "true", new Rng(42), null, false);
        Rng rng = new Rng(42);
        double bound = 1.0 / Math.sqrt(9);
        double[][] a = mat(l.loraA("a").value());
        for (int r = 0; r < 3; r++) {
            for (int i = 0; i < 9; i++) {
                assertEquals((float) ((2 * rng.nextDouble() - 1) * bound), a[r][i], 1e-7, "A[" + r + "," + i + "]");
            }
        }
        assertEquals(0.0, l.loraB("a").value().amaxNumber().doubleValue(), 0.0);
    }

    @Test
    void gaussianInitHasStdOneOverRank() {
        LoraLinear l = new LoraLinear(linear(21, 5, 6, false));
        l.addAdapter("g", 4, 4, 0.0, false, false, "gaussian", new Rng(7), null, false);
        Rng rng = new Rng(7);
        double[][] a = mat(l.loraA("g").value());
        for (double[] row : a) {
            for (double v : row) {
                assertEquals((float) (rng.nextGaussian() / 4.0), v, 1e-7);
            }
        }
        assertEquals(0.0, l.loraB("g").value().amaxNumber().doubleValue(), 0.0);
    }

    @Test
    void falseInitMakesBothFactorsRandomSoTheAdapterIsNotIdentity() {
        Linear base = linear(22, 5, 6, false);
        LoraLinear l = new LoraLinear(base);
        l.addAdapter("f", 2, 2, 0.0, false, false, "false", new Rng(9), null, false);
        Rng rng = new Rng(9);
        for (double[] row : mat(l.loraA("f").value())) {
            for (double v : row) {
                assertEquals((float) ((2 * rng.nextDouble() - 1) / Math.sqrt(6)), v, 1e-7);
            }
        }
        for (double[] row : mat(l.loraB("f").value())) {
            for (double v : row) {
                assertEquals((float) ((2 * rng.nextDouble() - 1) / Math.sqrt(2)), v, 1e-7);
            }
        }
        INDArray x = rnd(23, 2, 6);
        assertTrue(TestUtil.maxAbsDiff(base.forward(Tensor.constant(x)).value(), l.forward(Tensor.constant(x)).value()) > 1e-3);
    }

    @Test
    void pissaUsesTopSingularTriplesAndLeavesTheResidual() {
        for (boolean fifo : new boolean[]{false, true}) {
            Linear base = linear(30, 6, 8, fifo);
            LoraLinear l = new LoraLinear(base);
            INDArray w0 = l.baseWeightOutIn().dup('c');
            INDArray x = rnd(31, 3, 8);
            INDArray y0 = base.forward(Tensor.constant(x)).value().dup();
            int r = 3;
            int alpha = 6;
            double s = alpha / (double) r;
            l.addAdapter("p", r, alpha, 0.0, false, false, "pissa", null, null, false);
            INDArray a = l.loraA("p").value();
            INDArray b = l.loraB("p").value();
            // residual + s·B·A reconstructs W, so the adapted layer still computes the base output
            assertClose(w0, l.baseWeightOutIn().add(b.mmul(a).mul(s)), 1e-12, "W_res + sBA");
            assertClose(y0, l.forward(Tensor.constant(x)).value(), 1e-12, "output unchanged at init");
            // independent reference: LAPACK's full SVD of W directly (not the QR route of LinAlg)
            INDArray wf = w0.dup('f');
            INDArray sv = Nd4j.create(DataType.DOUBLE, 6);
            INDArray u = Nd4j.create(DataType.DOUBLE, new long[]{6, 6}, 'f');
            INDArray vt = Nd4j.create(DataType.DOUBLE, new long[]{8, 8}, 'f');
            Nd4j.getBlasWrapper().lapack().gesvd(wf, sv, u, vt);
            INDArray topR = u.get(NDArrayIndex.all(), NDArrayIndex.interval(0, r))
                    .mulRowVector(sv.get(NDArrayIndex.interval(0, r)).reshape(1, r))
                    .mmul(vt.get(NDArrayIndex.interval(0, r), NDArrayIndex.all()));
            assertClose(topR, b.mmul(a).mul(s), 1e-10, "s·B·A = U_r S_r V_rᵀ (fifo=" + fifo + ")");
            // A's rows are orthogonal with squared norms S_i / s; B's columns likewise
            INDArray aat = a.mmul(a.transpose());
            INDArray btb = b.transpose().mmul(b);
            for (int i = 0; i < r; i++) {
                double si = sv.getDouble(i) / s;
                for (int j = 0; j < r; j++) {
                    assertEquals(i == j ? si : 0.0, aat.getDouble(i, j), 1e-10);
                    assertEquals(i == j ? si : 0.0, btb.getDouble(i, j), 1e-10);
                }
            }
        }
    }

    @Test
    void oloraUsesQrFactorsAndLeavesTheResidual() {
        for (int[] shape : new int[][]{{7, 5}, {4, 6}}) {
            int out = shape[0];
            int in = shape[1];
            Linear base = linear(40 + out, out, in, false);
            LoraLinear l = new LoraLinear(base);
            INDArray w0 = base.weight().value().dup('c');
            int r = 3;
            l.addAdapter("o", r, 6, 0.0, false, false, "olora", null, null, false);
            double s = 2.0;
            INDArray a = l.loraA("o").value();
            INDArray b = l.loraB("o").value();
            assertClose(w0, base.weight().value().add(b.mmul(a).mul(s)), 1e-12, "W_res + sBA");
            // independent reference: classical Gram-Schmidt on W's columns (R_jj > 0); LAPACK may flip
            // the sign of a column of Q together with the matching row of R
            double[][] w = mat(w0);
            int k = Math.min(out, in);
            double[][] q = new double[out][k];
            double[][] rr = new double[k][in];
            for (int j = 0; j < k; j++) {
                double[] v = new double[out];
                for (int i = 0; i < out; i++) {
                    v[i] = w[i][j];
                }
                for (int p = 0; p < j; p++) {
                    double dot = 0;
                    for (int i = 0; i < out; i++) {
                        dot += q[i][p] * w[i][j];
                    }
                    for (int i = 0; i < out; i++) {
                        v[i] -= dot * q[i][p];
                    }
                }
                double n = 0;
                for (double e : v) {
                    n += e * e;
                }
                n = Math.sqrt(n);
                for (int i = 0; i < out; i++) {
                    q[i][j] = v[i] / n;
                }
            }
            for (int p = 0; p < k; p++) {
                for (int j = 0; j < in; j++) {
                    double dot = 0;
                    for (int i = 0; i < out; i++) {
                        dot += q[i][p] * w[i][j];
                    }
                    rr[p][j] = dot;
                }
            }
            double[][] bm = mat(b);
            double[][] am = mat(a);
            for (int j = 0; j < r; j++) {
                double sign = Math.signum(bm[0][j]) == Math.signum(q[0][j]) ? 1 : -1;
                for (int i = 0; i < out; i++) {
                    assertEquals(q[i][j], sign * bm[i][j], 1e-10, "B = Q[:, :r] (" + i + "," + j + ")");
                }
                for (int i = 0; i < in; i++) {
                    assertEquals(rr[j][i], sign * am[j][i], 1e-10, "A = R[:r] (" + j + "," + i + ")");
                }
            }
        }
    }

    @Test
    void unmergeAfterSeveralMergesRestoresTheExactWeights() {
        for (boolean fifo : new boolean[]{false, true}) {
            Linear base = linear(70, 5, 7, fifo);
            INDArray w0 = base.weight().value().dup();
            LoraLinear l = new LoraLinear(base);
            l.addAdapter("a", 2, 5, 0.0, false, false, "true", new Rng(71), null, false);
            l.addAdapter("d", 3, 3, 0.0, true, true, "true", new Rng(72), null, false);
            l.loraB("a").setValue(rnd(73, 5, 2));
            l.loraB("d").setValue(rnd(74, 5, 3));
            l.magnitude("d").setValue(rnd(75, 5).addi(2.0));
            l.merge(java.util.List.of("a", "d"));
            assertTrue(TestUtil.maxAbsDiff(w0, base.weight().value()) > 1e-2, "both merges changed W");
            l.unmerge();
            TestUtil.assertExactlyEqual(w0, base.weight().value(), "W after unmerging a LoRA and a DoRA merge (fifo=" + fifo + ")");
        }
        Embedding e = new Embedding(rnd(76, 9, 4).castTo(DataType.FLOAT), -1);
        INDArray t0 = e.weight().value().dup();
        LoraEmbedding le = new LoraEmbedding(e);
        le.addAdapter("x", 2, 7, false, "true", new Rng(77), false);
        le.addAdapter("y", 3, 3, false, "true", new Rng(78), false);
        le.loraA("x").setValue(rnd(79, 2, 9).castTo(DataType.FLOAT));
        le.loraA("y").setValue(rnd(80, 3, 9).castTo(DataType.FLOAT));
        le.merge(java.util.List.of("x", "y"));
        assertTrue(TestUtil.maxAbsDiff(t0, e.weight().value()) > 1e-2, "both merges changed the table");
        le.unmerge();
        TestUtil.assertExactlyEqual(t0, e.weight().value(), "embedding table after unmerging two merges");
    }

    @Test
    void pissaNeedsRankWithinMatrixSize() {
        LoraLinear l = new LoraLinear(linear(50, 3, 4, false));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> l.addAdapter("p", 5, 5, 0.0, false, false, "pissa", null, null, false));
        assertTrue(e.getMessage().contains("min(in, out) = 3"), e.getMessage());
    }

    @Test
    void embeddingLoraMatchesLookupFormulaAndPeftInit() {
        Embedding e = new Embedding(rnd(60, 9, 4), -1);
        LoraEmbedding le = new LoraEmbedding(e);
        le.addAdapter("e", 3, 6, false, "true", new Rng(5), false);
        assertEquals(0.0, le.loraA("e").value().amaxNumber().doubleValue(), 0.0, "A starts at zero");
        Rng rng = new Rng(5);
        for (double[] row : mat(le.loraB("e").value())) {
            for (double v : row) {
                assertEquals((float) rng.nextGaussian(), v, 1e-7, "B ~ N(0, 1)");
            }
        }
        le.loraA("e").setValue(rnd(61, 3, 9));
        INDArray ids = Nd4j.createFromArray(new long[][]{{1, 8, 0}, {4, 4, 2}});
        double[][] y;
        try (NoGrad ignored = NoGrad.enter()) {
            y = mat(le.forward(ids).value().reshape(6, 4));
        }
        double[][] table = mat(e.weight().value());
        double[][] a = mat(le.loraA("e").value());
        double[][] b = mat(le.loraB("e").value());
        long[] flat = ids.reshape(6).toLongVector();
        for (int n = 0; n < 6; n++) {
            int id = (int) flat[n];
            for (int d = 0; d < 4; d++) {
                double v = table[id][d];
                for (int k = 0; k < 3; k++) {
                    v += 2.0 * a[k][id] * b[d][k];
                }
                assertEquals(v, y[n][d], 1e-12, "row " + n + " dim " + d);
            }
        }
        assertEquals(e.weight(), le.weight(), "an embedding LoRA layer exposes the wrapped table");
    }
}
