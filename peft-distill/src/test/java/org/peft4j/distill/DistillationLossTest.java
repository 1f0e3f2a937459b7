package org.peft4j.distill;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.model.BackboneOutput;
import org.peft4j.core.model.HeadOutput;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.distill.DistillationConfig.HiddenLoss;
import org.peft4j.distill.DistillationConfig.LayerPair;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** DistillationLoss against hand-computed values (plain double arithmetic) and numerical gradients. */
class DistillationLossTest {
    static final double[][] S = {{1.0, -0.5, 0.25}, {0.3, 0.8, -1.2}};
    static final double[][] T = {{2.0, 0.0, -1.0}, {-0.4, 1.5, 0.2}};

    static double[] softmax(double[] x, double temp) {
        double max = Double.NEGATIVE_INFINITY;
        for (double v : x) max = Math.max(max, v / temp);
        double[] e = new double[x.length];
        double z = 0;
        for (int i = 0; i < x.length; i++) {
            e[i] = Math.exp(x[i] / temp - max);
            z += e[i];
        }
        for (int i = 0; i < x.length; i++) e[i] /= z;
        return e;
    }

    /** KL(softmax(t/T) ‖ softmax(s/T)) of one row, by the definition. */
    static double kl(double[] s, double[] t, double temp) {
        double[] ps = softmax(s, temp);
        double[] pt = softmax(t, temp);
        double k = 0;
        for (int i = 0; i < s.length; i++) k += pt[i] * Math.log(pt[i] / ps[i]);
        return k;
    }

    static INDArray randn(Rng r, DataType dt, long... shape) {
        INDArray a = Nd4j.create(DataType.DOUBLE, shape);
        for (long i = 0; i < a.length(); i++) {
            a.putScalar(i, r.nextGaussian());
        }
        return a.castTo(dt);
    }

    static Tensor var(double[][] v) {
        return Tensor.variable(Nd4j.createFromArray(v));
    }

    @Test
    void mixedLossValueAndGradientEqualHandComputed() {
        double temp = 2.0;
        double alpha = 0.3;
        // row 0 labelled (class 1), row 1 without a gold label: KD only
        INDArray labels = Nd4j.createFromArray(new long[]{1, -100});
        Tensor s = var(S);
        Tensor loss = DistillationLoss.logitLoss(s, Nd4j.createFromArray(T), labels, temp, alpha);
        double ce0 = -Math.log(softmax(S[0], 1)[1]);
        double want = (alpha * ce0 + (1 - alpha) * temp * temp * kl(S[0], T[0], temp) + temp * temp * kl(S[1], T[1], temp)) / 2;
        assertEquals(want, loss.item(), 1e-6);

        loss.backward();
        // d/ds of T²·KL = T·(p_s^T − p_t^T); d/ds CE = softmax(s) − onehot; each row weighted 1/N
        double[][] g = s.grad().toDoubleMatrix();
        for (int r = 0; r < 2; r++) {
            double[] ps = softmax(S[r], temp);
            double[] pt = softmax(T[r], temp);
            double[] p1 = softmax(S[r], 1);
            for (int c = 0; c < 3; c++) {
                double kd = temp * (ps[c] - pt[c]);
                double ce = p1[c] - (c == 1 ? 1 : 0);
                double wantG = r == 0 ? (alpha * ce + (1 - alpha) * kd) / 2 : kd / 2;
                assertEquals(wantG, g[r][c], 1e-6, "grad[" + r + "][" + c + "]");
            }
        }
    }

    @Test
    void alphaOneIsCrossEntropyAndAlphaZeroIsKdOnly() {
        INDArray labels = Nd4j.createFromArray(new long[]{0, 2});
        INDArray t = Nd4j.createFromArray(T);
        double ce = (-Math.log(softmax(S[0], 1)[0]) - Math.log(softmax(S[1], 1)[2])) / 2;
        assertEquals(ce, DistillationLoss.logitLoss(var(S), t, labels, 3.0, 1.0).item(), 1e-6);
        double kd = 9 * (kl(S[0], T[0], 3) + kl(S[1], T[1], 3)) / 2;
        assertEquals(kd, DistillationLoss.logitLoss(var(S), t, labels, 3.0, 0.0).item(), 1e-6);
        assertEquals(kd, DistillationLoss.logitLoss(var(S), t, null, 3.0, 0.7).item(), 1e-6);
    }

    @Test
    void tSquaredKeepsTheGradientScaleAtHighTemperature() {
        // Hinton's note: with T² the soft-target gradient tends to (z_s − z_t)/(C·N) for large T
        // (zero-mean logit differences); without T² it would shrink as 1/T².
        double[][] s = {{0.5, -0.5, 0.0}, {1.0, 0.0, -1.0}};
        double[][] t = {{-0.5, 0.5, 0.0}, {0.0, 0.0, 0.0}};
        for (double temp : new double[]{1.0, 4.0}) {
            double loss = DistillationLoss.logitLoss(var(s), Nd4j.createFromArray(t), null, temp, 0).item();
            assertEquals(temp * temp * (kl(s[0], t[0], temp) + kl(s[1], t[1], temp)) / 2, loss, 1e-6, "T=" + temp);
        }
        Tensor sv = var(s);
        DistillationLoss.logitLoss(sv, Nd4j.createFromArray(t), null, 1000.0, 0).backward();
        double[][] g = sv.grad().toDoubleMatrix();
        for (int r = 0; r < 2; r++) {
            for (int c = 0; c < 3; c++) {
                assertEquals((s[r][c] - t[r][c]) / (3 * 2), g[r][c], 1e-4, "grad[" + r + "][" + c + "]");
            }
        }
    }

    @Test
    void logitLossGradientMatchesNumerical() {
        Rng r = new Rng(11);
        INDArray labels = Nd4j.createFromArray(new long[]{2, -100, 0, -100});
        INDArray teacher = randn(r, DataType.DOUBLE, 4, 3);
        GradCheck.of("mixed kd + ce", in -> DistillationLoss.logitLoss(in[0], teacher, labels, 2.5, 0.4),
                randn(r, DataType.DOUBLE, 4, 3)).check();
    }

    @Test
    void hiddenLossesEqualHandComputedAndGradientsMatchNumerical() {
        double[][][] s = {{{1, 2}, {0, 1}, {5, 5}}};
        double[][][] t = {{{1, 0}, {2, 1}, {-3, 9}}};
        INDArray mask = Nd4j.createFromArray(new double[][]{{1, 1, 0}});    // the third token is padding
        double mse = ((0 + 4) + (4 + 0)) / (2.0 * 2);
        assertEquals(mse, DistillationLoss.hiddenPairLoss(Tensor.variable(Nd4j.createFromArray(s)), Nd4j.createFromArray(t),
                mask, HiddenLoss.MSE).item(), 1e-6);
        double cos0 = 1 / Math.sqrt(5);
        double cos1 = 1 / (Math.sqrt(1) * Math.sqrt(5));
        assertEquals(1 - (cos0 + cos1) / 2, DistillationLoss.hiddenPairLoss(Tensor.variable(Nd4j.createFromArray(s)),
                Nd4j.createFromArray(t), mask, HiddenLoss.COSINE).item(), 1e-6);

        Rng r = new Rng(5);
        INDArray m2 = Nd4j.createFromArray(new double[][]{{1, 1, 1}, {1, 1, 0}});
        INDArray teacher = randn(r, DataType.DOUBLE, 2, 3, 4);
        for (HiddenLoss kind : new HiddenLoss[]{HiddenLoss.MSE, HiddenLoss.COSINE}) {
            // student width 3 projected to the teacher's 4: gradients reach the state and the projection
            GradCheck.of("hidden " + kind + " through a projection",
                    in -> DistillationLoss.hiddenPairLoss(Ops.linear(in[0], in[1], in[2]), teacher, m2, kind),
                    randn(r, DataType.DOUBLE, 2, 3, 3), randn(r, DataType.DOUBLE, 4, 3),
                    randn(r, DataType.DOUBLE, 4)).check();
        }
    }

    @Test
    void attentionLossEqualsHandComputedKlAndGradientMatchesNumerical() {
        // [1 batch, 1 head, 2 queries, 2 keys]; the second query is padding
        double[][][][] a = {{{{0.7, 0.3}, {0.5, 0.5}}}};
        double[][][][] b = {{{{0.4, 0.6}, {0.9, 0.1}}}};
        INDArray mask = Nd4j.createFromArray(new double[][]{{1, 0}});
        double want = 0.4 * Math.log(0.4 / 0.7) + 0.6 * Math.log(0.6 / 0.3);
        assertEquals(want, DistillationLoss.attentionLoss(Tensor.variable(Nd4j.createFromArray(a)), Nd4j.createFromArray(b),
                mask).item(), 1e-6);

        Rng r = new Rng(8);
        INDArray m = Nd4j.createFromArray(new double[][]{{1, 1, 1}, {1, 1, 0}});
        INDArray teacher = Ops.softmax(Tensor.constant(randn(r, DataType.DOUBLE, 2, 4, 3, 3))).value();
        GradCheck.of("attention kl, same heads", in -> DistillationLoss.attentionLoss(Ops.softmax(in[0]), teacher, m),
                randn(r, DataType.DOUBLE, 2, 4, 3, 3)).check();
        GradCheck.of("attention kl, 2 student heads vs 4", in -> DistillationLoss.attentionLoss(Ops.softmax(in[0]), teacher, m),
                randn(r, DataType.DOUBLE, 2, 2, 3, 3)).check();
    }

    @Test
    void projectionMakesMismatchedWidthsWork() {
        DistillationConfig cfg = DistillationConfig.logits(2, 0.5).withHidden(HiddenLoss.MSE, 1.0,
                List.of(new LayerPair(2, 1)));
        DistillationLoss loss = new DistillationLoss(cfg, 8, 6, new Rng(1));
        Linear p = loss.projection(0);
        assertNotNull(p);
        assertEquals(6, p.inFeatures());
        assertEquals(8, p.outFeatures());
        assertEquals(8 * 6 + 8, loss.numTrainableParameters());
        assertNull(new DistillationLoss(cfg, 8, 8, new Rng(1)).projection(0), "equal widths need no projection");

        Rng r = new Rng(2);
        Tensor studentHidden = Tensor.variable(randn(r, DataType.FLOAT, 2, 3, 6));
        INDArray teacherHidden = randn(r, DataType.FLOAT, 2, 3, 8);
        Tensor logits = Tensor.variable(randn(r, DataType.FLOAT, 2, 2));
        HeadOutput so = new HeadOutput(logits, new BackboneOutput(studentHidden,
                List.of(studentHidden, studentHidden), List.of()));
        TeacherTargets tt = new TeacherTargets(randn(r, DataType.FLOAT, 2, 2), Map.of(2, teacherHidden), null);
        Tensor total = loss.loss(so, tt, null, null);
        // the hidden term is the MSE of the projected student against the teacher
        INDArray projected = p.forward(Tensor.constant(studentHidden.value())).value();
        double mse = projected.sub(teacherHidden).norm2Number().doubleValue();
        mse = mse * mse / (2 * 3 * 8);
        double logit = DistillationLoss.logitLoss(Tensor.constant(logits.value()), tt.logits(), null, 2, 0.5).item();
        assertEquals(logit + mse, total.item(), 1e-4);
        total.backward();
        assertTrue(p.weight().grad().norm2Number().doubleValue() > 0, "the projection gets a gradient");
        assertEquals(6, studentHidden.grad().size(2));

        // without a projection the widths are an error naming both shapes
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DistillationLoss.hiddenPairLoss(studentHidden, teacherHidden, null, HiddenLoss.MSE));
        assertTrue(e.getMessage().contains("[2, 3, 6]") && e.getMessage().contains("[2, 3, 8]"), e.getMessage());
    }

    @Test
    void mismatchedLabelCountIsAClearError() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DistillationLoss.logitLoss(var(S), Nd4j.zeros(DataType.DOUBLE, 2, 2), null, 1, 0.5));
        assertTrue(e.getMessage().contains("different label counts: student 3, teacher 2"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> DistillationConfig.logits(0, 0.5));
        assertThrows(IllegalArgumentException.class, () -> DistillationConfig.logits(1, 1.5));
        assertThrows(IllegalArgumentException.class,
                () -> DistillationConfig.logits(1, 0.5).withHidden(HiddenLoss.MSE, 1, List.of()));
    }
}
