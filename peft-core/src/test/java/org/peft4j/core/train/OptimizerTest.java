package org.peft4j.core.train;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Parameter;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Optimizer updates against references computed here in plain double arithmetic, written
 * from the published update rules (PyTorch's AdamW and SGD documentation), not from the code.
 */
class OptimizerTest {

    private static Parameter param(double[] values, long... shape) {
        return new Parameter(Nd4j.createFromArray(values).castTo(org.nd4j.linalg.api.buffer.DataType.FLOAT).reshape(shape));
    }

    private static void setGrad(Parameter p, double[] g) {
        p.zeroGrad();
        p.accumulateGrad(Nd4j.createFromArray(g).castTo(p.value().dataType()).reshape(p.shape()));
    }

    private static void assertValues(double[] expected, INDArray actual, double tol) {
        double[] a = actual.dup('c').reshape(actual.length()).toDoubleVector();
        assertEquals(expected.length, a.length);
        for (int i = 0; i < a.length; i++) {
            assertEquals(expected[i], a[i], tol, "element " + i);
        }
    }

    /** One AdamW update of a flat vector, from the formula, in double. */
    private static void adamwReference(double[] w, double[] m, double[] v, double[] g, int t,
                                       double lr, double b1, double b2, double eps, double wd) {
        for (int i = 0; i < w.length; i++) {
            w[i] = w[i] - lr * wd * w[i];
            m[i] = b1 * m[i] + (1 - b1) * g[i];
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
            double mHat = m[i] / (1 - Math.pow(b1, t));
            double vHat = v[i] / (1 - Math.pow(b2, t));
            w[i] = w[i] - lr * mHat / (Math.sqrt(vHat) + eps);
        }
    }

    @Test
    void adamwMatchesHandComputedReference() {
        double lr = 0.05, b1 = 0.8, b2 = 0.95, eps = 1e-3, wd = 0.2;   // large eps/wd so both terms show
        double[] w0 = {0.5, -1.25, 2.0, 0.1, -0.3, 0.75};
        double[] b0 = {0.2, -0.4};
        double[] gw1 = {0.3, -0.02, 1.5, 0.0, -0.7, 0.05};
        double[] gb1 = {-0.5, 0.01};
        double[] gw2 = {-0.1, 0.4, 0.2, 0.3, -0.05, 0.6};
        double[] gb2 = {0.25, -0.3};

        Parameter w = param(w0, 2, 3);     // rank 2: decayed
        Parameter b = param(b0, 2);        // rank 1: no decay
        Map<String, Parameter> ps = new LinkedHashMap<>();
        ps.put("layer.weight", w);
        ps.put("layer.bias", b);
        AdamW opt = AdamW.builder(ps).lr(lr).betas(b1, b2).eps(eps).weightDecay(wd).build();
        assertEquals(wd, opt.weightDecayFor("layer.weight"));
        assertEquals(0.0, opt.weightDecayFor("layer.bias"));

        double[] rw = w0.clone(), mw = new double[6], vw = new double[6];
        double[] rb = b0.clone(), mb = new double[2], vb = new double[2];

        setGrad(w, gw1);
        setGrad(b, gb1);
        opt.step();
        adamwReference(rw, mw, vw, gw1, 1, lr, b1, b2, eps, wd);
        adamwReference(rb, mb, vb, gb1, 1, lr, b1, b2, eps, 0.0);
        assertValues(rw, w.value(), 1e-6);
        assertValues(rb, b.value(), 1e-6);
        // concrete check of the first element, by hand: w=0.5·(1−0.01)=0.495, m̂=0.3, v̂=0.09 → 0.495 − 0.05·0.3/0.301
        assertEquals(0.495 - 0.05 * 0.3 / (0.3 + 1e-3), w.value().getDouble(0, 0), 1e-6);

        setGrad(w, gw2);
        setGrad(b, gb2);
        opt.step();
        adamwReference(rw, mw, vw, gw2, 2, lr, b1, b2, eps, wd);
        adamwReference(rb, mb, vb, gb2, 2, lr, b1, b2, eps, 0.0);
        assertValues(rw, w.value(), 1e-6);
        assertValues(rb, b.value(), 1e-6);

        OptimizerState st = opt.state();
        assertEquals(2L, st.steps().get("layer.weight"));
        assertValues(mw, st.tensors().get("layer.weight.exp_avg"), 1e-6);
        assertValues(vb, st.tensors().get("layer.bias.exp_avg_sq"), 1e-6);
    }

    /** A block with every kind of parameter a transformer has: embedding, linear weight + bias, LayerNorm, RMSNorm. */
    private static final class Block extends org.peft4j.core.nn.Module {
        Block() {
            org.peft4j.core.tensor.Rng rng = new org.peft4j.core.tensor.Rng(3);
            registerModule("embed_tokens", new org.peft4j.core.nn.Embedding(5, 3, rng));
            registerModule("dense", new org.peft4j.core.nn.Linear(3, 2, true, rng));
            registerModule("LayerNorm", new org.peft4j.core.nn.LayerNorm(2, 1e-5));
            registerModule("norm", new org.peft4j.core.nn.RMSNorm(2, 1e-6));
        }
    }

    @Test
    void adamwGroupsBiasesAndNormWeightsWithoutDecay() {
        Block m = new Block();
        Map<String, Parameter> ps = m.namedTrainableParameters();
        assertEquals(java.util.List.of("embed_tokens.weight", "dense.weight", "dense.bias", "LayerNorm.weight", "LayerNorm.bias",
                "norm.weight"), java.util.List.copyOf(ps.keySet()));
        double wd = 0.25;
        AdamW opt = AdamW.builder(ps).lr(0.4).weightDecay(wd).build();
        for (String noDecay : java.util.List.of("dense.bias", "LayerNorm.weight", "LayerNorm.bias", "norm.weight")) {
            assertEquals(0.0, opt.weightDecayFor(noDecay), noDecay);
        }
        assertEquals(wd, opt.weightDecayFor("dense.weight"));
        assertEquals(wd, opt.weightDecayFor("embed_tokens.weight"));

        // a zero gradient leaves the Adam term at 0 (m = v = 0), so one step shows the decay alone:
        // decayed tensors become p·(1 − lr·wd) = 0.9·p, the others stay bit-for-bit
        Map<String, INDArray> before = new LinkedHashMap<>();
        ps.forEach((k, p) -> {
            p.value().addi(0.5);   // norm weights start at 1 and biases at 0: make every value non-trivial
            before.put(k, p.value().dup());
            p.zeroGrad();
            p.accumulateGrad(p.value().mul(0.0));
        });
        opt.step();
        ps.forEach((k, p) -> {
            double factor = opt.weightDecayFor(k) == 0.0 ? 1.0 : 1.0 - 0.4 * wd;
            INDArray b = before.get(k);
            double[] expected = b.castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE).reshape(b.length()).toDoubleVector();
            for (int i = 0; i < expected.length; i++) {
                expected[i] *= factor;
            }
            assertValues(expected, p.value(), factor == 1.0 ? 0.0 : 1e-6);
        });
    }

    @Test
    void adamwNamedOverridesWinOverTheRankRule() {
        Parameter w = param(new double[]{1, 2, 3, 4}, 2, 2);
        Parameter b = param(new double[]{1, 2}, 2);
        Map<String, Parameter> ps = new LinkedHashMap<>();
        ps.put("classifier.weight", w);
        ps.put("norm.weight", b);
        AdamW opt = AdamW.builder(ps).weightDecay(0.1)
                .weightDecayOverride("classifier\\..*", 0.0)
                .weightDecayOverride("norm\\.weight", 0.3).build();
        assertEquals(0.0, opt.weightDecayFor("classifier.weight"));
        assertEquals(0.3, opt.weightDecayFor("norm.weight"));

        // with a zero gradient the Adam term is 0, so only decay moves the value: w·(1 − lr·wd)
        setGrad(b, new double[]{0, 0});
        opt.setLearningRate(0.5);
        opt.step();
        assertValues(new double[]{1 * (1 - 0.15), 2 * (1 - 0.15)}, b.value(), 1e-7);
        assertValues(new double[]{1, 2, 3, 4}, w.value(), 0);   // no gradient: skipped entirely
        assertTrue(opt.state().steps().containsKey("norm.weight"));
        assertTrue(!opt.state().steps().containsKey("classifier.weight"), "no state for a parameter without gradient");
    }

    @Test
    void sgdMomentumTwoStepsByHand() {
        double lr = 0.1, mu = 0.9, wd = 0.01;
        double[] w0 = {1.0, -2.0, 0.5, 3.0};
        double[] g1 = {0.5, 0.25, -1.0, 0.0};
        double[] g2 = {-0.5, 1.0, 0.5, 2.0};
        Parameter w = param(w0, 2, 2);
        Parameter bias = param(new double[]{0.3}, 1);
        Map<String, Parameter> ps = new LinkedHashMap<>();
        ps.put("w", w);
        ps.put("bias", bias);
        Sgd opt = Sgd.builder(ps).lr(lr).momentum(mu).weightDecay(wd).build();

        // step 1: d = g + wd·w; buf = d; w ← w − lr·buf
        double[] buf = new double[4], w1 = new double[4];
        for (int i = 0; i < 4; i++) {
            buf[i] = g1[i] + wd * w0[i];
            w1[i] = w0[i] - lr * buf[i];
        }
        setGrad(w, g1);
        setGrad(bias, new double[]{2.0});
        opt.step();
        assertValues(w1, w.value(), 1e-6);
        assertEquals(0.3 - 0.1 * 2.0, bias.value().getDouble(0), 1e-6);   // rank 1: no decay
        assertEquals(1.0 - 0.1 * (0.5 + 0.01), w.value().getDouble(0, 0), 1e-6);

        // step 2: d = g + wd·w; buf = μ·buf + d; w ← w − lr·buf
        double[] w2 = new double[4];
        for (int i = 0; i < 4; i++) {
            double d = g2[i] + wd * w1[i];
            buf[i] = mu * buf[i] + d;
            w2[i] = w1[i] - lr * buf[i];
        }
        setGrad(w, g2);
        setGrad(bias, new double[]{-1.0});
        opt.step();
        assertValues(w2, w.value(), 1e-6);
        assertEquals(0.1 - 0.1 * (0.9 * 2.0 - 1.0), bias.value().getDouble(0), 1e-6);
        assertValues(buf, opt.state().tensors().get("w.momentum_buffer"), 1e-6);
    }

    @Test
    void sgdNesterovAndDampening() {
        Parameter w = param(new double[]{1.0, 2.0}, 2);
        Sgd nest = Sgd.builder(Map.of("w", w)).lr(0.5).momentum(0.5).nesterov(true).build();
        setGrad(w, new double[]{1.0, -1.0});
        nest.step();   // buf = g; d = g + μ·buf = 1.5·g
        assertValues(new double[]{1.0 - 0.75, 2.0 + 0.75}, w.value(), 1e-6);
        setGrad(w, new double[]{2.0, 0.0});
        nest.step();   // buf = 0.5·g1 + g2 = (2.5, −0.5); d = g2 + 0.5·buf = (3.25, −0.25)
        assertValues(new double[]{0.25 - 1.625, 2.75 + 0.125}, w.value(), 1e-6);

        Parameter v = param(new double[]{0.0}, 1);
        Sgd damp = Sgd.builder(Map.of("v", v)).lr(1.0).momentum(0.5).dampening(0.5).build();
        setGrad(v, new double[]{1.0});
        damp.step();   // first buffer is the gradient, undampened
        assertEquals(-1.0, v.value().getDouble(0), 1e-7);
        setGrad(v, new double[]{1.0});
        damp.step();   // buf = 0.5·1 + 0.5·1 = 1
        assertEquals(-2.0, v.value().getDouble(0), 1e-7);
    }

    @Test
    void rejectsFrozenParameters() {
        Parameter frozen = new Parameter(Nd4j.ones(2, 2), false);
        Map<String, Parameter> ps = new LinkedHashMap<>();
        ps.put("encoder.weight", frozen);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new AdamW(ps, 1e-3, 0.0));
        assertTrue(e.getMessage().contains("encoder.weight") && e.getMessage().contains("frozen"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Sgd(ps, 1e-3, 0.9));
    }

    @Test
    void stateRoundTripContinuesIdentically() {
        double[] w0 = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
        double[][] grads = {{1, 2, 3, 4, 5, 6}, {-1, 0.5, 0.25, 2, -3, 1}, {0.1, 0.1, -0.2, 0.3, 0.0, 1}};
        Parameter a = param(w0, 3, 2);
        AdamW oa = AdamW.builder(Map.of("p", a)).lr(0.01).weightDecay(0.1).build();
        for (double[] g : grads) {
            setGrad(a, g);
            oa.step();
        }
        Parameter b = param(w0, 3, 2);
        AdamW ob = AdamW.builder(Map.of("p", b)).lr(0.01).weightDecay(0.1).build();
        setGrad(b, grads[0]);
        ob.step();
        OptimizerState saved = ob.state();
        Parameter c = new Parameter(b.value().dup());
        AdamW oc = AdamW.builder(Map.of("p", c)).lr(0.01).weightDecay(0.1).build();
        oc.loadState(saved);
        for (int i = 1; i < grads.length; i++) {
            setGrad(c, grads[i]);
            oc.step();
        }
        assertEquals(a.value(), c.value(), "restored optimizer must continue bit-for-bit");

        OptimizerState bad = new OptimizerState("adamw", Map.of("q", 1L), Map.of("q.exp_avg", Nd4j.zeros(3, 2)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> oc.loadState(bad));
        assertTrue(e.getMessage().contains("'q"), e.getMessage());
        OptimizerState wrongShape = new OptimizerState("adamw", Map.of("p", 1L),
                Map.of("p.exp_avg", Nd4j.zeros(2, 3), "p.exp_avg_sq", Nd4j.zeros(2, 3)));
        assertThrows(IllegalArgumentException.class, () -> oc.loadState(wrongShape));
        assertThrows(IllegalArgumentException.class, () -> oc.loadState(new OptimizerState("sgd", Map.of(), Map.of())));
    }

    @Test
    void scratchIsOneSharedBufferSoStepsDoNotAllocate() {
        Parameter big = param(new double[]{1, 2, 3, 4, 5, 6}, 2, 3);
        Parameter small = param(new double[]{1, 2}, 2);
        Map<String, Parameter> ps = new LinkedHashMap<>();
        ps.put("big", big);
        ps.put("small", small);
        AdamW opt = new AdamW(ps, 0.1, 0.0);
        INDArray s1 = opt.scratchLike(big.value());
        s1.assign(5.0);
        INDArray s2 = opt.scratchLike(small.value());
        assertEquals(5.0, s2.getDouble(1), 0, "the small scratch must be a view of the same buffer");
        s2.assign(-1.0);
        assertEquals(-1.0, s1.getDouble(0, 1), 0);
    }

    @Test
    void fortranOrderedAndDoubleParametersUpdateLikeCOrderedOnes() {
        double[] w0 = {0.5, -1.0, 2.0, 0.25, 1.5, -0.75};
        double[] g = {0.1, 0.2, -0.3, 0.4, -0.5, 0.6};
        INDArray c = Nd4j.createFromArray(w0).castTo(org.nd4j.linalg.api.buffer.DataType.FLOAT).reshape(2, 3);
        Parameter pc = new Parameter(c.dup('c'));
        Parameter pf = new Parameter(c.dup('f'));
        Parameter pd = new Parameter(Nd4j.createFromArray(w0).reshape(2, 3));   // DOUBLE
        for (Parameter p : new Parameter[]{pc, pf, pd}) {
            setGrad(p, g);
            new AdamW(Map.of("p", p), 0.1, 0.1).step();
            Sgd.builder(Map.of("p", p)).lr(0.1).momentum(0.9).weightDecay(0.1).build().step();
        }
        assertValues(pc.value().dup('c').reshape(6).toDoubleVector(), pf.value(), 0.0);
        assertValues(pc.value().dup('c').reshape(6).toDoubleVector(), pd.value(), 1e-6);
        assertEquals(org.nd4j.linalg.api.buffer.DataType.DOUBLE, pd.value().dataType());
    }

    @Test
    void zeroGradDropsGradients() {
        Parameter a = param(new double[]{1, 2}, 2);
        Sgd opt = new Sgd(Map.of("a", a), 0.1, 0.0);
        setGrad(a, new double[]{1, 1});
        opt.zeroGrad();
        assertNull(a.grad());
        opt.step();   // no gradient: nothing happens
        assertValues(new double[]{1, 2}, a.value(), 0);
    }
}
