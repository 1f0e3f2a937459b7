package org.peft4j.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * MultiHeadAttention end to end in the BERT, LLaMA/Qwen2 (GQA, rotary, biases) and GPT-2 (fused
 * Conv1D) layouts: parameter names, forward against a reference composed from generic ops,
 * numerical gradient checks over input, every parameter and prefix tensors, KV-cache decoding
 * against the full causal forward, and LoRA-style replacement of a projection.
 */
class MultiHeadAttentionTest {

    static MultiHeadAttention bert(int hidden, int heads, long seed) {
        return MultiHeadAttention.builder(hidden, heads).projections("query", "key", "value").output(null)
                .bias(true).initRng(new Rng(seed)).build();
    }

    static MultiHeadAttention llama(int hidden, int heads, int kvHeads, int layer, long seed) {
        int headDim = hidden / heads;
        return MultiHeadAttention.builder(hidden, heads).numKvHeads(kvHeads).biases(true, true, true, false)
                .causal(true).rotary(new RotaryEmbedding(headDim, 10000.0)).layerIndex(layer).initRng(new Rng(seed)).build();
    }

    static MultiHeadAttention gpt2(int hidden, int heads, long seed) {
        return MultiHeadAttention.builder(hidden, heads).fusedQkv("c_attn").output("c_proj").fanInFanOut(true)
                .causal(true).initRng(new Rng(seed)).build();
    }

    /** Random non-trivial parameter values (biases too), drawn from a fixed seed. */
    static <M extends Module> M randomize(M m, long seed) {
        Rng rng = new Rng(seed);
        for (Parameter p : m.parameters()) {
            p.value().assign(GradCheck.random(rng, p.shape()).muli(0.5));
        }
        return m;
    }

    /**
     * Reference built from generic ops: projections, slice/reshape/permute into heads, rotary with
     * the module's tables, prefix concat, the naive attention of {@link org.peft4j.core.tensor.ScaledDotProductAttentionTest}, merge
     * heads, output projection.
     */
    static Tensor reference(MultiHeadAttention m, Tensor x, INDArray keep, long positionOffset, Tensor prefixK, Tensor prefixV) {
        long b = x.size(0);
        long t = x.size(1);
        int h = m.numHeads();
        int hkv = m.numKvHeads();
        int d = m.headDim();
        String[] names = m.projectionNames();
        Tensor q;
        Tensor k;
        Tensor v;
        if (names[3] != null) {
            Tensor qkv = m.child(names[3], UnaryModule.class).forward(x);
            q = Ops.slice(qkv, 2, 0, (long) h * d);
            k = Ops.slice(qkv, 2, (long) h * d, (long) (h + hkv) * d);
            v = Ops.slice(qkv, 2, (long) (h + hkv) * d, (long) (h + 2 * hkv) * d);
        } else {
            q = m.child(names[0], UnaryModule.class).forward(x);
            k = m.child(names[1], UnaryModule.class).forward(x);
            v = m.child(names[2], UnaryModule.class).forward(x);
        }
        Tensor q4 = Ops.permute(Ops.reshape(q, b, t, h, d), 0, 2, 1, 3);
        Tensor k4 = Ops.permute(Ops.reshape(k, b, t, hkv, d), 0, 2, 1, 3);
        Tensor v4 = Ops.permute(Ops.reshape(v, b, t, hkv, d), 0, 2, 1, 3);
        if (m.rotary() != null) {
            INDArray[] cs = m.rotary().cosSin(positionOffset, t, x.value().dataType());
            q4 = Ops.rotary(q4, cs[0], cs[1]);
            k4 = Ops.rotary(k4, cs[0], cs[1]);
        }
        if (prefixK != null) {
            k4 = Ops.concat(2, prefixK, k4);
            v4 = Ops.concat(2, prefixV, v4);
        }
        Tensor ctx = org.peft4j.core.tensor.ScaledDotProductAttentionTest.reference(q4, k4, v4, keep, m.scale());
        Tensor merged = Ops.reshape(Ops.permute(ctx, 0, 2, 1, 3), b, t, (long) h * d);
        return names[4] == null ? merged : m.child(names[4], UnaryModule.class).forward(merged);
    }

    /** keep[b, 0, q, s] for prefix P, causal (no cache) and per-row count of leading padded tokens. */
    static INDArray keep(int b, int t, int p, boolean causal, int[] leftPad) {
        return org.peft4j.core.tensor.ScaledDotProductAttentionTest.referenceKeep(new org.peft4j.core.tensor.ScaledDotProductAttentionTest.Case("ref", b, 1, 1, t, p + t, 1, causal, 0, p, leftPad));
    }

    static INDArray paddingMask(int b, int len, int[] leftPad) {
        INDArray m = Nd4j.ones(DataType.INT64, b, len);
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < leftPad[i]; j++) {
                m.putScalar(new long[]{i, j}, 0);
            }
        }
        return m;
    }

    @Test
    void bertLayoutNamesForwardAndGradients() {
        MultiHeadAttention m = randomize(NnTestSupport.toDouble(bert(6, 2, 1)), 2);
        assertEquals(List.of("query.weight", "query.bias", "key.weight", "key.bias", "value.weight", "value.bias"),
                List.copyOf(m.namedParameters().keySet()));
        assertEquals(List.of(6L, 6L), java.util.Arrays.stream(m.namedParameters().get("key.weight").shape()).boxed().toList());
        int[] pad = {0, 2};
        INDArray x = GradCheck.random(new Rng(3), 2, 4, 6);
        AttentionContext ctx = AttentionContext.of(paddingMask(2, 4, pad));
        Tensor got = m.forward(Tensor.constant(x), ctx);
        assertEquals(List.of(2L, 4L, 6L), java.util.Arrays.stream(got.shape()).boxed().toList());
        Tensor ref = reference(m, Tensor.constant(x), keep(2, 4, 0, false, pad), 0, null, null);
        assertTrue(NnTestSupport.maxAbsDiff(got.value(), ref.value()) <= 1e-10);
        NnTestSupport.gradCheck("bert attention", m, in -> m.forward(in[0], ctx), x).maxElements(15).run();
    }

    @Test
    void llamaLayoutWithGqaRotaryBiasesAndOffset() {
        MultiHeadAttention m = randomize(NnTestSupport.toDouble(llama(8, 4, 2, 0, 4)), 5);
        assertEquals(List.of("q_proj.weight", "q_proj.bias", "k_proj.weight", "k_proj.bias", "v_proj.weight", "v_proj.bias",
                "o_proj.weight"), List.copyOf(m.namedParameters().keySet()));
        assertEquals(List.of(4L, 8L), java.util.Arrays.stream(m.namedParameters().get("k_proj.weight").shape()).boxed().toList());
        int[] pad = {1, 0};
        INDArray x = GradCheck.random(new Rng(6), 2, 4, 8);
        // a rotary position offset without a cache (e.g. HF's positions after a prefix)
        AttentionContext ctx = AttentionContext.of(paddingMask(2, 4, pad)).withPositionOffset(3);
        Tensor got = m.forward(Tensor.constant(x), ctx);
        Tensor ref = reference(m, Tensor.constant(x), keep(2, 4, 0, true, pad), 3, null, null);
        assertTrue(NnTestSupport.maxAbsDiff(got.value(), ref.value()) <= 1e-10);
        NnTestSupport.gradCheck("llama attention", m, in -> m.forward(in[0], ctx), x).maxElements(15).run();
    }

    @Test
    void gpt2LayoutWithFusedConv1D() {
        MultiHeadAttention m = randomize(NnTestSupport.toDouble(gpt2(6, 3, 7)), 8);
        assertEquals(List.of("c_attn.weight", "c_attn.bias", "c_proj.weight", "c_proj.bias"), List.copyOf(m.namedParameters().keySet()));
        assertEquals(List.of(6L, 18L), java.util.Arrays.stream(m.namedParameters().get("c_attn.weight").shape()).boxed().toList());
        INDArray x = GradCheck.random(new Rng(9), 2, 3, 6);
        Tensor got = m.forward(Tensor.constant(x), null);
        Tensor ref = reference(m, Tensor.constant(x), keep(2, 3, 0, true, null), 0, null, null);
        assertTrue(NnTestSupport.maxAbsDiff(got.value(), ref.value()) <= 1e-10);
        NnTestSupport.gradCheck("gpt2 attention", m, in -> m.forward(in[0], AttentionContext.empty()), x).maxElements(15).run();
    }

    @Test
    void prefixKeysAndValuesReceiveGradients() {
        MultiHeadAttention m = randomize(NnTestSupport.toDouble(llama(8, 4, 2, 1, 10)), 11);
        Rng rng = new Rng(12);
        int p = 3;
        INDArray x = GradCheck.random(rng, 2, 3, 8);
        INDArray pk = GradCheck.random(rng, 2, 2, p, 2);
        INDArray pv = GradCheck.random(rng, 2, 2, p, 2);
        int[] pad = {0, 1};
        // layer index 1 reads entry 1; entry 0 (another layer's prefix) must be ignored
        java.util.function.Function<Tensor[], AttentionContext> ctxOf = in -> AttentionContext.of(paddingMask(2, 3, pad))
                .withPositionOffset(p)
                .withPrefix(new Tensor[]{null, in[1]}, new Tensor[]{null, in[2]});
        Tensor got = m.forward(Tensor.constant(x), ctxOf.apply(new Tensor[]{null, Tensor.constant(pk), Tensor.constant(pv)}));
        Tensor ref = reference(m, Tensor.constant(x), keep(2, 3, p, true, pad), p, Tensor.constant(pk), Tensor.constant(pv));
        assertTrue(NnTestSupport.maxAbsDiff(got.value(), ref.value()) <= 1e-10);
        // a padding mask that also covers the (visible) prefix columns gives the same result
        INDArray fullMask = Nd4j.concat(1, Nd4j.ones(DataType.INT64, 2, p), paddingMask(2, 3, pad));
        Tensor got2 = m.forward(Tensor.constant(x), ctxOf.apply(new Tensor[]{null, Tensor.constant(pk), Tensor.constant(pv)})
                .withKeyPaddingMask(fullMask));
        assertEquals(0.0, NnTestSupport.maxAbsDiff(got.value(), got2.value()), 1e-12);
        m.freeze();   // prefix tuning: frozen base, trainable prefix
        int n = NnTestSupport.gradCheck("prefix attention", m, in -> m.forward(in[0], ctxOf.apply(in)), x, pk, pv)
                .maxElements(24).run();
        assertEquals(3 * 24, n, "x, prefix keys and prefix values checked; frozen parameters skipped");
    }

    @Test
    void badPrefixShapeIsNamed() {
        MultiHeadAttention m = llama(8, 4, 2, 0, 13);
        Tensor x = Tensor.constant(Nd4j.zeros(1, 2, 8));
        Tensor bad = Tensor.constant(Nd4j.zeros(1, 4, 3, 2));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> m.forward(x, AttentionContext.empty().withPrefix(new Tensor[]{bad}, new Tensor[]{bad})));
        assertTrue(e.getMessage().contains("[1, 4, 3, 2]") && e.getMessage().contains("layer 0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> m.forward(Tensor.constant(Nd4j.zeros(1, 2, 7)), null));
        assertTrue(e.getMessage().contains("[1, 2, 7]"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> MultiHeadAttention.builder(8, 4).numKvHeads(3).initRng(new Rng(1)).build());
    }

    /** Decoding one token at a time with a KV cache reproduces the full causal forward. */
    @Test
    void kvCacheDecodingMatchesFullForward() {
        for (MultiHeadAttention m : new MultiHeadAttention[]{llama(16, 4, 2, 0, 14), gpt2(12, 3, 15), llama(16, 4, 1, 0, 16)}) {
            randomize(m, 17);
            m.eval();
            int t = 7;
            INDArray x = GradCheck.random(new Rng(18), 2, t, m.hiddenSize()).castTo(DataType.FLOAT);
            try (NoGrad ignored = NoGrad.enter()) {
                INDArray full = m.forward(Tensor.constant(x), AttentionContext.empty()).value();
                KVCache[] caches = AttentionContext.newCaches(1);
                int prompt = 3;
                INDArray first = m.forward(Tensor.constant(slice(x, 0, prompt)),
                        AttentionContext.empty().withCaches(caches)).value();
                assertTrue(NnTestSupport.maxAbsDiff(first, slice(full, 0, prompt)) <= 1e-5);
                for (int i = prompt; i < t; i++) {
                    AttentionContext ctx = AttentionContext.empty().withCaches(caches).withPositionOffset(caches[0].length());
                    INDArray step = m.forward(Tensor.constant(slice(x, i, i + 1)), ctx).value();
                    assertEquals(i + 1, caches[0].length());
                    double diff = NnTestSupport.maxAbsDiff(step, slice(full, i, i + 1));
                    assertTrue(diff <= 1e-5, m + " step " + i + ": diff " + diff);
                }
            }
        }
    }

    /** The same with a prefix (not cached) and a growing padding mask. */
    @Test
    void kvCacheDecodingWithPrefixAndPadding() {
        MultiHeadAttention m = randomize(llama(8, 2, 2, 0, 19), 20);
        m.eval();
        int t = 5;
        int p = 2;
        Rng rng = new Rng(21);
        INDArray x = GradCheck.random(rng, 2, t, 8).castTo(DataType.FLOAT);
        Tensor pk = Tensor.constant(GradCheck.random(rng, 2, 2, p, 4).castTo(DataType.FLOAT));
        Tensor pv = Tensor.constant(GradCheck.random(rng, 2, 2, p, 4).castTo(DataType.FLOAT));
        INDArray mask = paddingMask(2, t, new int[]{0, 2});
        AttentionContext base = AttentionContext.empty().withPrefix(new Tensor[]{pk}, new Tensor[]{pv});
        try (NoGrad ignored = NoGrad.enter()) {
            INDArray full = m.forward(Tensor.constant(x), base.withKeyPaddingMask(mask).withPositionOffset(p)).value();
            KVCache[] caches = AttentionContext.newCaches(1);
            for (int i = 0; i < t; i++) {
                INDArray stepMask = mask.get(NDArrayIndex.all(), NDArrayIndex.interval(0, i + 1)).dup();
                INDArray step = m.forward(Tensor.constant(slice(x, i, i + 1)),
                        base.withCaches(caches).withKeyPaddingMask(stepMask).withPositionOffset(p + caches[0].length())).value();
                double diff = NnTestSupport.maxAbsDiff(step, slice(full, i, i + 1));
                assertTrue(diff <= 1e-5, "step " + i + ": diff " + diff);
            }
        }
    }

    private static INDArray slice(INDArray x, int from, int to) {
        return x.get(NDArrayIndex.all(), NDArrayIndex.interval(from, to), NDArrayIndex.all()).dup();
    }

    /** A wrapper standing in for LoRA: base output plus a constant shift. */
    static final class Shifted extends Module implements UnaryModule {
        private final double shift;

        Shifted(Module base, double shift) {
            registerModule("base_layer", base);
            this.shift = shift;
        }

        @Override
        public Tensor forward(Tensor x) {
            return Ops.add(child("base_layer", UnaryModule.class).forward(x), shift);
        }
    }

    @Test
    void replacingAProjectionChangesTheForward() {
        MultiHeadAttention m = randomize(llama(8, 2, 2, 0, 22), 23);
        Tensor x = Tensor.constant(GradCheck.random(new Rng(24), 1, 3, 8).castTo(DataType.FLOAT));
        INDArray before = m.forward(x, null).value();
        Module old = m.replace("v_proj", new Shifted(m.child("v_proj"), 1.0));
        INDArray shifted = m.forward(x, null).value();
        assertTrue(m.namedParameters().containsKey("v_proj.base_layer.weight"));
        // softmax rows sum to 1, so a +1 shift of every value adds o_proj's column sums to the output
        INDArray colSums = m.child("o_proj", Linear.class).weight().value().sum(1);
        INDArray expected = before.add(colSums.reshape(1, 1, 8).broadcast(1, 3, 8));
        assertTrue(NnTestSupport.maxAbsDiff(shifted, expected) <= 1e-4);
        m.replace("v_proj", old);
        assertEquals(0.0, NnTestSupport.maxAbsDiff(before, m.forward(x, null).value()), 1e-6);
    }

    @Test
    void frozenAttentionStillPassesInputGradients() {
        MultiHeadAttention m = randomize(NnTestSupport.toDouble(gpt2(6, 2, 25)), 26);
        m.freeze();
        assertEquals(0, m.numTrainableParameters());
        Tensor x = Tensor.variable(GradCheck.random(new Rng(27), 1, 3, 6));
        m.forward(x, null).backward(Nd4j.ones(DataType.DOUBLE, 1, 3, 6));
        assertNotNull(x.grad());
        for (Parameter p : m.parameters()) {
            assertNull(p.grad());
        }
        NnTestSupport.gradCheck("frozen gpt2 attention input", m, in -> m.forward(in[0], null),
                GradCheck.random(new Rng(28), 1, 3, 6)).run();
    }

    @Test
    void attentionDropoutOnlyInTraining() {
        MultiHeadAttention m = MultiHeadAttention.builder(8, 2).projections("query", "key", "value").output(null)
                .attentionDropout(0.5, new Rng(29)).initRng(new Rng(30)).build();
        Tensor x = Tensor.constant(GradCheck.random(new Rng(31), 1, 4, 8).castTo(DataType.FLOAT));
        INDArray train = m.forward(x, null).value();
        m.eval();
        assertSame(m, m.child("query").isTraining() ? null : m);
        INDArray e1 = m.forward(x, null).value();
        INDArray e2 = m.forward(x, null).value();
        assertEquals(0.0, NnTestSupport.maxAbsDiff(e1, e2), 0.0);
        assertTrue(NnTestSupport.maxAbsDiff(train, e1) > 1e-3);
    }

    /** Memoised masks, rotary tables and caches live outside a trainer's per-step workspace. */
    @Test
    void repeatedForwardInsidePerStepWorkspaces() {
        MultiHeadAttention m = randomize(llama(8, 4, 2, 0, 32), 33);
        m.eval();
        INDArray x = GradCheck.random(new Rng(34), 2, 5, 8).castTo(DataType.FLOAT);
        INDArray mask = paddingMask(2, 5, new int[]{0, 1});
        INDArray baseline = m.forward(Tensor.constant(x), AttentionContext.of(mask)).value().dup();
        org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration conf = org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration.builder()
                .policyAllocation(org.nd4j.linalg.api.memory.enums.AllocationPolicy.STRICT)
                .policyLearning(org.nd4j.linalg.api.memory.enums.LearningPolicy.FIRST_LOOP)
                .policySpill(org.nd4j.linalg.api.memory.enums.SpillPolicy.REALLOCATE)
                .policyReset(org.nd4j.linalg.api.memory.enums.ResetPolicy.BLOCK_LEFT)
                .initialSize(0).build();
        AttentionContext shared = AttentionContext.of(mask);   // reused across steps, like a static context
        for (int step = 0; step < 4; step++) {
            // parameter gradients made inside the workspace die with it (a trainer zeroes them every step)
            m.parameters().forEach(Parameter::zeroGrad);
            INDArray out;
            INDArray grad;
            try (org.nd4j.linalg.api.memory.MemoryWorkspace ws = Nd4j.getWorkspaceManager().getAndActivateWorkspace(conf, "NN_TEST_STEP")) {
                Tensor xt = Tensor.variable(x);
                Tensor y = m.forward(xt, shared);
                y.backward(Nd4j.onesLike(y.value()));
                out = y.value().detach();
                grad = xt.grad().detach();
                // scribble over workspace memory so stale references would show
                Nd4j.valueArrayOf(new long[]{4096}, 1e30f, DataType.FLOAT);
            }
            assertEquals(0.0, NnTestSupport.maxAbsDiff(out, baseline), 1e-6, "step " + step);
            assertTrue(grad.amaxNumber().doubleValue() > 0);
        }
    }
}
