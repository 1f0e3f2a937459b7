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

import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused attention core against a naive composition of generic ops (matmul, maskedFill,
 * softmax, matmul, with key/value heads repeated by indexSelect and the mask built here by
 * explicit loops), and numerical gradient checks in DOUBLE for every mask kind, grouped-query
 * heads, prefix keys and the merged / fused operand layouts.
 */
public class ScaledDotProductAttentionTest {

    /** One attention configuration. padKeys: per batch row, how many leading non-prefix keys are padding. */
    public record Case(String name, int b, int h, int hkv, int t, int s, int d, boolean causal, int offset, int prefix, int[] padKeys) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Case> cases() {
        return Stream.of(
                new Case("bidirectional", 2, 2, 2, 4, 4, 3, false, 0, 0, null),
                new Case("causal", 2, 2, 2, 5, 5, 3, true, 0, 0, null),
                new Case("causal with offset (cache)", 1, 2, 2, 2, 6, 4, true, 4, 0, null),
                new Case("bidirectional padding", 2, 3, 3, 4, 4, 2, false, 0, 0, new int[]{0, 2}),
                new Case("causal left padding (fully masked rows)", 2, 2, 2, 4, 4, 3, true, 0, 0, new int[]{0, 2}),
                new Case("grouped-query 4/2", 2, 4, 2, 3, 3, 3, true, 0, 0, null),
                new Case("multi-query 3/1", 1, 3, 1, 3, 5, 2, false, 0, 0, new int[]{1}),
                new Case("prefix bidirectional", 2, 2, 2, 3, 5, 3, false, 0, 2, null),
                new Case("prefix causal padding gqa", 2, 4, 2, 3, 6, 2, true, 0, 3, new int[]{1, 0}),
                new Case("prefix causal offset", 1, 2, 1, 2, 7, 3, true, 2, 3, null));
    }

    /** 1 where query t may see key s: built independently of {@link AttentionMask}. [B, 1, T, S] DOUBLE. */
    public static INDArray referenceKeep(Case c) {
        INDArray keep = Nd4j.zeros(DataType.DOUBLE, c.b, 1, c.t, c.s);
        for (int b = 0; b < c.b; b++) {
            for (int q = 0; q < c.t; q++) {
                for (int k = 0; k < c.s; k++) {
                    boolean vis = true;
                    if (k >= c.prefix) {
                        int j = k - c.prefix;
                        if (c.causal && j > c.offset + q) {
                            vis = false;
                        }
                        if (c.padKeys != null && j < c.padKeys[b]) {
                            vis = false;
                        }
                    }
                    keep.putScalar(new long[]{b, 0, q, k}, vis ? 1.0 : 0.0);
                }
            }
        }
        return keep;
    }

    static AttentionMask mask(Case c) {
        AttentionMask m = c.causal ? AttentionMask.causal(c.offset) : AttentionMask.bidirectional();
        m = m.withPrefix(c.prefix);
        if (c.padKeys != null) {
            INDArray pad = Nd4j.ones(DataType.INT64, c.b, c.s - c.prefix);
            for (int b = 0; b < c.b; b++) {
                for (int j = 0; j < c.padKeys[b]; j++) {
                    pad.putScalar(new long[]{b, j}, 0);
                }
            }
            m = m.withKeyPadding(pad);
        }
        return m;
    }

    /** The naive composition: repeat kv heads, scale·q·kᵀ, maskedFill(-1e9), softmax, ·v. */
    public static Tensor reference(Tensor q, Tensor k, Tensor v, INDArray keep, double scale) {
        long h = q.size(1);
        long hkv = k.size(1);
        if (h != hkv) {
            long g = h / hkv;
            long[] idx = new long[(int) h];
            for (int i = 0; i < h; i++) {
                idx[i] = i / g;
            }
            INDArray ids = Nd4j.createFromArray(idx);
            k = Ops.indexSelect(k, 1, ids);
            v = Ops.indexSelect(v, 1, ids);
        }
        Tensor s = Ops.mul(Ops.matmul(q, k, false, true), scale);
        if (keep != null) {
            s = Ops.maskedFill(s, keep.rsub(1.0), -1e9);
        }
        return Ops.matmul(stableSoftmax(s), v);
    }

    /**
     * exp(s − max)/Σ exp(s − max) composed from generic ops (the max is a constant shift, which
     * changes neither the value nor the gradient). Not Ops.softmax: ND4J's native softmax, which
     * it uses, returns NaN for DOUBLE rows of large negative values such as a fully masked row.
     */
    static Tensor stableSoftmax(Tensor s) {
        Tensor shifted = Ops.sub(s, Tensor.constant(s.value().max(true, s.rank() - 1)));
        Tensor e = Ops.exp(shifted);
        return Ops.div(e, Ops.sum(e, true, s.rank() - 1));
    }

    private static INDArray[] qkv(Case c, long seed) {
        Rng rng = new Rng(seed);
        return new INDArray[]{
                GradCheck.random(rng, c.b, c.h, c.t, c.d),
                GradCheck.random(rng, c.b, c.hkv, c.s, c.d),
                GradCheck.random(rng, c.b, c.hkv, c.s, c.d)};
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void forwardMatchesNaiveReference(Case c) {
        INDArray[] in = qkv(c, 11);
        double scale = 1.0 / Math.sqrt(c.d);
        Tensor got = ScaledDotProductAttention.scaledDotProduct(Tensor.constant(in[0]), Tensor.constant(in[1]), Tensor.constant(in[2]),
                mask(c), scale, 0.0, null, false);
        Tensor ref = reference(Tensor.constant(in[0]), Tensor.constant(in[1]), Tensor.constant(in[2]), referenceKeep(c), scale);
        assertEquals(DataType.DOUBLE, got.value().dataType());
        assertTrue(maxAbsDiff(got.value(), ref.value()) <= 1e-6,
                c + ": max diff " + maxAbsDiff(got.value(), ref.value()));
        assertFalse(got.value().isNaN().any() || got.value().isInfinite().any(), c + ": non-finite output");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void forwardMatchesNaiveReferenceInFloat(Case c) {
        INDArray[] in = qkv(c, 12);
        double scale = 1.0 / Math.sqrt(c.d);
        INDArray q = in[0].castTo(DataType.FLOAT);
        INDArray k = in[1].castTo(DataType.FLOAT);
        INDArray v = in[2].castTo(DataType.FLOAT);
        Tensor got = ScaledDotProductAttention.scaledDotProduct(Tensor.constant(q), Tensor.constant(k), Tensor.constant(v), mask(c), scale, 0.0, null, false);
        Tensor ref = reference(Tensor.constant(in[0]), Tensor.constant(in[1]), Tensor.constant(in[2]), referenceKeep(c), scale);
        assertEquals(DataType.FLOAT, got.value().dataType());
        assertTrue(maxAbsDiff(got.value(), ref.value()) <= 1e-5, c + ": float diff");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void gradientCheck(Case c) {
        INDArray[] in = qkv(c, 13);
        AttentionMask m = mask(c);
        double scale = 0.7;
        GradCheck.of("attention " + c, t -> ScaledDotProductAttention.scaledDotProduct(t[0], t[1], t[2], m, scale, 0.0, null, false),
                in[0], in[1], in[2]).check();
    }

    @Test
    void gradientOnlyForInputsThatNeedIt() {
        Case c = cases().filter(x -> x.name.startsWith("grouped")).findFirst().orElseThrow();
        INDArray[] in = qkv(c, 14);
        // only v trainable, then only k: the others stay without gradient
        GradCheck.of("attention v only", t -> ScaledDotProductAttention.scaledDotProduct(t[0], t[1], t[2], mask(c), 0.5, 0.0, null, false),
                in[0], in[1], in[2]).requiresGrad(false, false, true).check();
        GradCheck.of("attention k only", t -> ScaledDotProductAttention.scaledDotProduct(t[0], t[1], t[2], mask(c), 0.5, 0.0, null, false),
                in[0], in[1], in[2]).requiresGrad(false, true, false).check();
    }

    @Test
    void fullyMaskedRowsAreFiniteAndPassNoGradientToScores() {
        Case c = cases().filter(x -> x.name.startsWith("causal left padding")).findFirst().orElseThrow();
        INDArray[] in = qkv(c, 15);
        Tensor q = Tensor.variable(in[0]);
        Tensor out = ScaledDotProductAttention.scaledDotProduct(q, Tensor.constant(in[1]), Tensor.constant(in[2]), mask(c), 0.5, 0.0, null, false);
        // batch 1 has keys 0,1 padded: queries 0 and 1 see nothing -> uniform weights over all keys
        INDArray meanV = in[2].get(org.nd4j.linalg.indexing.NDArrayIndex.point(1)).mean(1);  // [H, D]
        for (int h = 0; h < c.h; h++) {
            for (int t = 0; t < 2; t++) {
                for (int d = 0; d < c.d; d++) {
                    assertEquals(meanV.getDouble(h, d), out.value().getDouble(1, h, t, d), 1e-12);
                }
            }
        }
        out.backward(Nd4j.ones(DataType.DOUBLE, out.shape()));
        INDArray dq = q.grad();
        assertNotNull(dq);
        for (int t = 0; t < 2; t++) {
            assertEquals(0.0, dq.get(org.nd4j.linalg.indexing.NDArrayIndex.point(1), org.nd4j.linalg.indexing.NDArrayIndex.all(),
                    org.nd4j.linalg.indexing.NDArrayIndex.point(t)).amaxNumber().doubleValue(), 0.0);
        }
        assertFalse(dq.isNaN().any());
    }

    /** Merged [B, T, H·D] operands (a fused q|k|v tensor) give the same values and correct gradients. */
    @Test
    void fusedMergedLayoutMatchesSplitAndChecksGradients() {
        int b = 2, t = 4, h = 4, hkv = 2, d = 3;
        long cols = (long) (h + 2 * hkv) * d;
        INDArray fused = GradCheck.random(new Rng(21), b, t, cols);
        AttentionMask m = AttentionMask.causal(0).withKeyPadding(Nd4j.createFromArray(new long[][]{{1, 1, 1, 1}, {0, 1, 1, 1}}));
        Tensor merged = ScaledDotProductAttention.attend(
                ScaledDotProductAttention.Heads.merged(Tensor.constant(fused), 0, h, d),
                ScaledDotProductAttention.Heads.merged(Tensor.constant(fused), (long) h * d, hkv, d),
                ScaledDotProductAttention.Heads.merged(Tensor.constant(fused), (long) (h + hkv) * d, hkv, d),
                m, 0.6, 0.0, null, false, true);
        assertEquals(java.util.List.of((long) b, (long) t, (long) h * d),
                java.util.Arrays.stream(merged.shape()).boxed().toList());
        // split copies of the same data through the public [B,H,T,D] entry point
        INDArray q = fused.get(all(), all(), org.nd4j.linalg.indexing.NDArrayIndex.interval(0, h * d)).dup().reshape(b, t, h, d).permute(0, 2, 1, 3).dup();
        INDArray k = fused.get(all(), all(), org.nd4j.linalg.indexing.NDArrayIndex.interval(h * d, (h + hkv) * d)).dup().reshape(b, t, hkv, d).permute(0, 2, 1, 3).dup();
        INDArray v = fused.get(all(), all(), org.nd4j.linalg.indexing.NDArrayIndex.interval((h + hkv) * d, cols)).dup().reshape(b, t, hkv, d).permute(0, 2, 1, 3).dup();
        Tensor split = ScaledDotProductAttention.scaledDotProduct(Tensor.constant(q), Tensor.constant(k), Tensor.constant(v), m, 0.6, 0.0, null, false);
        INDArray splitMerged = split.value().permute(0, 2, 1, 3).dup().reshape(b, t, h * d);
        assertTrue(maxAbsDiff(merged.value(), splitMerged) <= 1e-12);

        GradCheck.of("fused merged attention", in -> ScaledDotProductAttention.attend(
                        ScaledDotProductAttention.Heads.merged(in[0], 0, h, d),
                        ScaledDotProductAttention.Heads.merged(in[0], (long) h * d, hkv, d),
                        ScaledDotProductAttention.Heads.merged(in[0], (long) (h + hkv) * d, hkv, d),
                        m, 0.6, 0.0, null, false, true),
                fused).check();
    }

    /** A merged tensor with unused columns and the same tensor used as both k and v (overlapping roles). */
    @Test
    void partiallyCoveredAndSharedOperandsGetCorrectGradients() {
        int b = 1, t = 3, h = 2, d = 2;
        INDArray wide = GradCheck.random(new Rng(22), b, t, 3L * h * d + 2);   // 2 spare columns
        GradCheck.of("q,k from one wide tensor, v = k columns", in -> ScaledDotProductAttention.attend(
                        ScaledDotProductAttention.Heads.merged(in[0], 2, h, d),
                        ScaledDotProductAttention.Heads.merged(in[0], 2 + (long) h * d, h, d),
                        ScaledDotProductAttention.Heads.merged(in[0], 2 + (long) h * d, h, d),
                        AttentionMask.causal(0), 0.9, 0.0, null, false, true),
                wide).check();
        INDArray kv = GradCheck.random(new Rng(23), b, h, t, d);
        INDArray q = GradCheck.random(new Rng(24), b, h, t, d);
        GradCheck.of("k and v are the same tensor", in -> ScaledDotProductAttention.scaledDotProduct(in[0], in[1], in[1],
                AttentionMask.bidirectional(), 0.9, 0.0, null, false), q, kv).check();
    }

    /** Operands that are non-contiguous views (permuted, sliced) are read in place correctly. */
    @Test
    void nonContiguousOperands() {
        int b = 2, t = 3, h = 2, d = 4;
        Rng rng = new Rng(25);
        INDArray qBase = GradCheck.random(rng, b, t, h, d);       // [B,T,H,D] -> permuted view [B,H,T,D]
        INDArray kBase = GradCheck.random(rng, b, h, t + 2, d);   // sliced along S
        INDArray v = GradCheck.random(rng, b, h, t, d);
        GradCheck.of("views", in -> ScaledDotProductAttention.scaledDotProduct(
                        Ops.permute(in[0], 0, 2, 1, 3), Ops.slice(in[1], 2, 1, 1 + t), in[2],
                        AttentionMask.causal(0), 0.5, 0.0, null, false),
                qBase, kBase, v).check();
        Tensor got = ScaledDotProductAttention.scaledDotProduct(Tensor.constant(qBase.permute(0, 2, 1, 3)),
                Tensor.constant(kBase.get(all(), all(), org.nd4j.linalg.indexing.NDArrayIndex.interval(1, 1 + t), all())),
                Tensor.constant(v), AttentionMask.causal(0), 0.5, 0.0, null, false);
        Tensor ref = reference(Tensor.constant(qBase.permute(0, 2, 1, 3).dup()),
                Tensor.constant(kBase.get(all(), all(), org.nd4j.linalg.indexing.NDArrayIndex.interval(1, 1 + t), all()).dup()),
                Tensor.constant(v), causalKeep(b, t), 0.5);
        assertTrue(maxAbsDiff(got.value(), ref.value()) <= 1e-12);
    }

    /** Merged operands that are offset views (a batch slice, a transposed [B, C, T] array). */
    @Test
    void mergedOperandsThatAreOffsetOrTransposedViews() {
        int t = 3, h = 2, d = 2;
        Rng rng = new Rng(26);
        INDArray big = GradCheck.random(rng, 3, t, 2L * h * d);   // batch rows 1..2 used: non-zero offset
        INDArray vt = GradCheck.random(rng, 2, (long) h * d, t);  // [B, C, T], used transposed
        GradCheck.of("offset merged views", in -> {
            Tensor qk = Ops.slice(in[0], 0, 1, 3);
            Tensor v = Ops.permute(in[1], 0, 2, 1);
            return Ops.permute(ScaledDotProductAttention.attend(
                    ScaledDotProductAttention.Heads.merged(qk, 0, h, d), ScaledDotProductAttention.Heads.merged(qk, (long) h * d, h, d),
                    ScaledDotProductAttention.Heads.merged(v, h), AttentionMask.causal(0), 0.8, 0.0, null, false, true), 0, 2, 1);
        }, big, vt).check();
        // values against the split entry point on copies
        INDArray qk = big.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(1, 3), all(), all()).dup();
        Tensor merged = ScaledDotProductAttention.attend(
                ScaledDotProductAttention.Heads.merged(Tensor.constant(big.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(1, 3), all(), all())), 0, h, d),
                ScaledDotProductAttention.Heads.merged(Tensor.constant(big.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(1, 3), all(), all())), (long) h * d, h, d),
                ScaledDotProductAttention.Heads.merged(Tensor.constant(vt.permute(0, 2, 1)), h), AttentionMask.causal(0), 0.8, 0.0, null, false, false);
        Tensor ref = reference(
                Tensor.constant(qk.get(all(), all(), org.nd4j.linalg.indexing.NDArrayIndex.interval(0, h * d)).dup().reshape(2, t, h, d).permute(0, 2, 1, 3).dup()),
                Tensor.constant(qk.get(all(), all(), org.nd4j.linalg.indexing.NDArrayIndex.interval(h * d, 2 * h * d)).dup().reshape(2, t, h, d).permute(0, 2, 1, 3).dup()),
                Tensor.constant(vt.permute(0, 2, 1).dup().reshape(2, t, h, d).permute(0, 2, 1, 3).dup()),
                causalKeep(2, t), 0.8);
        assertTrue(maxAbsDiff(merged.value(), ref.value()) <= 1e-12);
    }

    private static INDArray causalKeep(int b, int t) {
        INDArray keep = Nd4j.zeros(DataType.DOUBLE, b, 1, t, t);
        for (int i = 0; i < b; i++) {
            for (int q = 0; q < t; q++) {
                for (int k = 0; k <= q; k++) {
                    keep.putScalar(new long[]{i, 0, q, k}, 1.0);
                }
            }
        }
        return keep;
    }

    private static org.nd4j.linalg.indexing.INDArrayIndex all() {
        return org.nd4j.linalg.indexing.NDArrayIndex.all();
    }

    @Test
    void dropoutIsSeededAndOffInEval() {
        Case c = cases().filter(x -> x.name.startsWith("grouped")).findFirst().orElseThrow();
        INDArray[] in = qkv(c, 31);
        Tensor q = Tensor.constant(in[0]);
        Tensor k = Tensor.constant(in[1]);
        Tensor v = Tensor.constant(in[2]);
        INDArray plain = ScaledDotProductAttention.scaledDotProduct(q, k, v, mask(c), 0.5, 0.0, null, false).value();
        INDArray a = ScaledDotProductAttention.scaledDotProduct(q, k, v, mask(c), 0.5, 0.4, new Rng(77), true).value();
        // interleave another draw so a shared generator would show up
        ScaledDotProductAttention.scaledDotProduct(q, k, v, mask(c), 0.5, 0.4, new Rng(78), true);
        INDArray b = ScaledDotProductAttention.scaledDotProduct(q, k, v, mask(c), 0.5, 0.4, new Rng(77), true).value();
        INDArray evalOut = ScaledDotProductAttention.scaledDotProduct(q, k, v, mask(c), 0.5, 0.4, new Rng(77), false).value();
        assertEquals(0.0, maxAbsDiff(a, b), 0.0, "same seed, same mask");
        assertTrue(maxAbsDiff(a, plain) > 1e-3, "dropout changes the output in training");
        assertEquals(0.0, maxAbsDiff(evalOut, plain), 0.0, "no dropout in eval");
        GradCheck.of("attention with dropout", t -> ScaledDotProductAttention.scaledDotProduct(t[0], t[1], t[2], mask(c), 0.5, 0.4, new Rng(5), true),
                in[0], in[1], in[2]).check();
    }

    @Test
    void dropoutMaskStatistics() {
        INDArray m = ScaledDotProductAttention.dropoutMask(DataType.FLOAT, new long[]{200, 1000}, 0.25, new Rng(3));
        double zeros = m.eq(0.0).castTo(DataType.DOUBLE).meanNumber().doubleValue();
        assertEquals(0.25, zeros, 0.01, "fraction dropped");
        assertEquals(1.0, m.meanNumber().doubleValue(), 0.01, "inverted dropout keeps the mean");
        assertEquals(1.0 / 0.75, m.maxNumber().doubleValue(), 1e-6);
    }

    @Test
    void noGraphUnderNoGrad() {
        Case c = cases().findFirst().orElseThrow();
        INDArray[] in = qkv(c, 41);
        try (NoGrad ignored = NoGrad.enter()) {
            Tensor out = ScaledDotProductAttention.scaledDotProduct(Tensor.variable(in[0]), Tensor.variable(in[1]), Tensor.variable(in[2]),
                    mask(c), 0.5, 0.0, null, false);
            assertFalse(out.requiresGrad());
        }
        Tensor out = ScaledDotProductAttention.scaledDotProduct(Tensor.constant(in[0]), Tensor.constant(in[1]), Tensor.constant(in[2]),
                mask(c), 0.5, 0.0, null, false);
        assertFalse(out.requiresGrad());
        assertNull(out.grad());
    }

    @Test
    void badShapesAreRejectedWithShapesInTheMessage() {
        Tensor q = Tensor.constant(Nd4j.zeros(DataType.DOUBLE, 1, 3, 2, 4));
        Tensor k = Tensor.constant(Nd4j.zeros(DataType.DOUBLE, 1, 2, 2, 4));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ScaledDotProductAttention.scaledDotProduct(q, k, k, null, 1.0, 0.0, null, false));
        assertTrue(e.getMessage().contains("multiple"), e.getMessage());
        Tensor k5 = Tensor.constant(Nd4j.zeros(DataType.DOUBLE, 1, 3, 2, 5));
        e = assertThrows(IllegalArgumentException.class, () -> ScaledDotProductAttention.scaledDotProduct(q, k5, k5, null, 1.0, 0.0, null, false));
        assertTrue(e.getMessage().contains("[1, 3, 2, 5]"), e.getMessage());
        Tensor k3 = Tensor.constant(Nd4j.zeros(DataType.DOUBLE, 1, 3, 2, 4));
        e = assertThrows(IllegalArgumentException.class, () -> ScaledDotProductAttention.scaledDotProduct(q, k3, k3,
                AttentionMask.bidirectional().withKeyPadding(Nd4j.ones(DataType.INT64, 1, 3)), 1.0, 0.0, null, false));
        assertTrue(e.getMessage().contains("[1, 3]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ScaledDotProductAttention.scaledDotProduct(q, k3, k3, null, 1.0, 1.0, new Rng(1), true));
        assertTrue(e.getMessage().contains("dropout"), e.getMessage());
    }

    /** Largest absolute difference; NaN (failing every {@code <= tol}) when either holds NaN or infinity. */
    static double maxAbsDiff(INDArray a, INDArray b) {
        if (!java.util.Arrays.equals(a.shape(), b.shape())) {
            throw new AssertionError("shapes differ: " + java.util.Arrays.toString(a.shape()) + " vs " + java.util.Arrays.toString(b.shape()));
        }
        if (a.isNaN().any() || b.isNaN().any() || a.isInfinite().any() || b.isInfinite().any()) {
            return Double.NaN;
        }
        return a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    }
}
