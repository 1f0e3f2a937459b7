package org.peft4j.core.tensor;

import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.api.ops.impl.reduce3.Dot;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.api.ops.random.impl.BernoulliDistribution;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.nio.FloatBuffer;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.IntUnaryOperator;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The fused, differentiable attention core {@code softmax(scale·q·kᵀ + mask)·v} with its own
 * hand-written backward.
 *
 * <p>Why fused: composing it from generic ops costs a copy per transpose, a fresh array per
 * step and a graph node per step. Here every product is one rank-4 {@link Mmul} reading
 * permuted/strided views of the projections directly (no head-split copies), the scale rides
 * in {@code alpha}, the softmax runs in place on the score buffer, and the context is written
 * straight into the {@code [batch, T, heads·headDim]} buffer the output projection reads.
 *
 * <p>Grouped-query attention: query head {@code h} reads key/value head {@code h / g}
 * ({@code g = H / Hkv}, Hugging Face's {@code repeat_kv} order). Each of the {@code g} group
 * members is one strided view over the query heads ({@code j, j+g, …}), so key/value heads are
 * never repeated in memory and their gradients sum over the group via {@code beta = 1}.
 */
public final class ScaledDotProductAttention {
    private static final MMulTranspose NONE = MMulTranspose.builder().build();
    private static final MMulTranspose TRANS_A = MMulTranspose.builder().transposeA(true).build();
    private static final MMulTranspose TRANS_B = MMulTranspose.builder().transposeB(true).build();

    /** A private native generator per thread, re-seeded from the caller's {@link Rng} for every mask. */
    private static final ThreadLocal<org.nd4j.linalg.api.rng.Random> NATIVE_RNG =
            ThreadLocal.withInitial(() -> {
                try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
                    return Nd4j.getRandomFactory().getNewRandomInstance(0L);
                }
            });

    private ScaledDotProductAttention() {
    }

    /**
     * Where one operand's heads live: either a tensor already shaped {@code [batch, heads, len, headDim]}
     * (any strides), or a merged projection {@code [batch, len, C]} whose columns
     * {@code [colOffset, colOffset + heads·headDim)} hold the heads side by side (the layout a
     * {@code Linear} produces, and GPT-2's fused {@code c_attn} with its q/k/v column blocks).
     */
    public static final class Heads {
        final Tensor tensor;
        final boolean merged;
        final long colOffset;
        final long numHeads;
        final long headDim;

        private Heads(Tensor tensor, boolean merged, long colOffset, long numHeads, long headDim) {
            this.tensor = tensor;
            this.merged = merged;
            this.colOffset = colOffset;
            this.numHeads = numHeads;
            this.headDim = headDim;
        }

        /** A tensor {@code [batch, heads, len, headDim]}. */
        public static Heads split(Tensor t) {
            if (t == null || t.rank() != 4) {
                throw new IllegalArgumentException("attention operand must be [batch, heads, len, headDim], got "
                        + (t == null ? "null" : Arrays.toString(t.shape())));
            }
            return new Heads(t, false, 0, t.size(1), t.size(3));
        }

        /** Columns {@code [colOffset, colOffset + numHeads·headDim)} of a merged tensor {@code [batch, len, C]}. */
        public static Heads merged(Tensor t, long colOffset, long numHeads, long headDim) {
            if (t == null || t.rank() != 3) {
                throw new IllegalArgumentException("merged attention operand must be [batch, len, C], got "
                        + (t == null ? "null" : Arrays.toString(t.shape())));
            }
            if (numHeads <= 0 || headDim <= 0 || colOffset < 0 || colOffset + numHeads * headDim > t.size(2)) {
                throw new IllegalArgumentException("columns [" + colOffset + ", " + (colOffset + numHeads * headDim)
                        + ") for " + numHeads + " heads of size " + headDim + " do not fit in " + Arrays.toString(t.shape()));
            }
            return new Heads(t, true, colOffset, numHeads, headDim);
        }

        /** Columns {@code [0, C)} of a merged tensor {@code [batch, len, C = numHeads·headDim]}. */
        public static Heads merged(Tensor t, long numHeads) {
            if (t == null || t.rank() != 3 || numHeads <= 0 || t.size(2) % numHeads != 0) {
                throw new IllegalArgumentException("merged attention operand " + (t == null ? "null" : Arrays.toString(t.shape()))
                        + " cannot be split into " + numHeads + " heads");
            }
            return merged(t, 0, numHeads, t.size(2) / numHeads);
        }

        /**
         * The operand as a differentiable {@code [batch, heads, len, headDim]} tensor: itself when
         * split, else slice (when the block is not the whole tensor), reshape and permute.
         */
        public Tensor asSplit() {
            if (!merged) {
                return tensor;
            }
            Tensor m = tensor;
            if (colOffset != 0 || columns() != m.size(2)) {
                m = Ops.slice(m, 2, colOffset, colOffset + columns());
            }
            return Ops.permute(Ops.reshape(m, m.size(0), m.size(1), numHeads, headDim), 0, 2, 1, 3);
        }

        /** {@code [batch, heads, len, headDim]} view of {@code base} (this operand's value or a gradient buffer of its shape). */
        INDArray view(INDArray base) {
            return merged ? headsView(base, colOffset, numHeads, headDim) : base;
        }

        /** The tensor the heads are read from. */
        public Tensor tensor() {
            return tensor;
        }

        /** True for a column block of a merged {@code [batch, len, C]} tensor. */
        public boolean isMerged() {
            return merged;
        }

        /** First column of the block (0 for a split operand). */
        public long columnOffset() {
            return colOffset;
        }

        public long numHeads() {
            return numHeads;
        }

        public long headDim() {
            return headDim;
        }

        /** Columns of the block ({@code numHeads·headDim}; 0 for a split operand). */
        public long columns() {
            return merged ? numHeads * headDim : 0;
        }

        boolean overlaps(Heads o) {
            if (o.tensor != tensor) {
                return false;
            }
            if (!merged || !o.merged) {
                return true;
            }
            return colOffset < o.colOffset + o.columns() && o.colOffset < colOffset + columns();
        }
    }

    /**
     * {@code softmax(scale·q·kᵀ masked)·v} with optional attention dropout.
     *
     * @param q     {@code [B, H, T, D]}
     * @param k     {@code [B, Hkv, S, D]}, {@code H} a multiple of {@code Hkv}
     * @param v     {@code [B, Hkv, S, Dv]}
     * @param mask  which keys each query sees (null = all)
     * @param scale the score scale, usually {@code 1/√D}
     * @param dropoutP probability of dropping an attention weight (applied only when {@code training})
     * @param rng   the dropout mask source (may be null when no dropout is applied)
     * @return the context {@code [B, H, T, Dv]}
     */
    public static Tensor scaledDotProduct(Tensor q, Tensor k, Tensor v, AttentionMask mask, double scale,
                                          double dropoutP, Rng rng, boolean training) {
        return attend(Heads.split(q), Heads.split(k), Heads.split(v), mask, scale, dropoutP, rng, training, false);
    }

    /**
     * The general form: operands in either layout ({@link Heads}); with {@code mergedOutput} the
     * result is {@code [B, T, H·Dv]} (heads side by side, ready for an output projection),
     * otherwise {@code [B, H, T, Dv]}.
     */
    public static Tensor attend(Heads q, Heads k, Heads v, AttentionMask mask, double scale,
                                double dropoutP, Rng rng, boolean training, boolean mergedOutput) {
        if (!(dropoutP >= 0.0 && dropoutP < 1.0)) {
            throw new IllegalArgumentException("attention dropout must be in [0, 1), got " + dropoutP);
        }
        final INDArray qv = q.view(q.tensor.value());
        final INDArray kv = k.view(k.tensor.value());
        final INDArray vv = v.view(v.tensor.value());
        final long b = qv.size(0);
        final long h = qv.size(1);
        final long t = qv.size(2);
        final long d = qv.size(3);
        final long hkv = kv.size(1);
        final long s = kv.size(2);
        final long dv = vv.size(3);
        if (kv.size(0) != b || vv.size(0) != b || kv.size(3) != d || vv.size(1) != hkv || vv.size(2) != s) {
            throw new IllegalArgumentException("attention shapes do not agree: q " + Arrays.toString(qv.shape())
                    + " [B,H,T,D], k " + Arrays.toString(kv.shape()) + " [B,Hkv,S,D], v " + Arrays.toString(vv.shape()) + " [B,Hkv,S,Dv]");
        }
        if (hkv <= 0 || h % hkv != 0) {
            throw new IllegalArgumentException("query heads " + h + " must be a multiple of key/value heads " + hkv);
        }
        final DataType dt = qv.dataType();
        if (kv.dataType() != dt || vv.dataType() != dt) {
            throw new IllegalArgumentException("attention operands must share a data type: q " + dt + ", k " + kv.dataType()
                    + ", v " + vv.dataType());
        }
        final int g = (int) (h / hkv);
        final boolean drop = training && dropoutP > 0.0;
        if (drop && rng == null) {
            throw new IllegalArgumentException("attention dropout " + dropoutP + " in training needs an Rng");
        }

        if (dt == DataType.FLOAT) {
            return attendFloat(q, k, v, qv, kv, vv, mask, scale, dropoutP, drop ? rng : null, mergedOutput, g);
        }

        // scores [B, H, T, S] = scale · q·kᵀ, one batched product per group member
        final INDArray probs = Nd4j.createUninitialized(dt, b, h, t, s);
        for (int j = 0; j < g; j++) {
            Nd4j.exec(new Mmul(group(qv, j, g), kv, group(probs, j, g), scale, 0.0, TRANS_B));
        }
        final AttentionMask.Built built = mask == null ? null : mask.build(b, t, s, dt);
        if (built != null) {
            built.apply(probs);
        }
        softmaxLastAxisInPlace(probs);

        final INDArray dropMask = drop ? dropoutMask(dt, probs.shape(), dropoutP, rng) : null;
        final INDArray attn = drop ? probs.mul(dropMask) : probs;

        final INDArray out;
        final INDArray outHeads;
        if (mergedOutput) {
            out = Nd4j.createUninitialized(dt, b, t, h * dv);
            outHeads = headsView(out, 0, h, dv);
        } else {
            out = Nd4j.createUninitialized(dt, b, h, t, dv);
            outHeads = out;
        }
        for (int j = 0; j < g; j++) {
            Nd4j.exec(new Mmul(group(attn, j, g), vv, group(outHeads, j, g), 1.0, 0.0, NONE));
        }

        Tensor[] parents = distinct(q.tensor, k.tensor, v.tensor);
        return Tensor.fromOp(out, gradOut -> {
            final INDArray gh = mergedOutput ? headsView(gradOut, 0, h, dv) : gradOut;
            final boolean needQ = q.tensor.requiresGrad();
            final boolean needK = k.tensor.requiresGrad();
            final boolean needV = v.tensor.requiresGrad();
            Grads grads = new Grads(q, k, v);

            if (needV) {
                grads.value(attn, gh, g);
            }
            if (needQ || needK) {
                // dAttn [B, H, T, S] = dOut · vᵀ, then through dropout and the softmax:
                // dScores = P ⊙ (dP − Σ_s dP ⊙ P)
                INDArray ds = Nd4j.createUninitialized(dt, b, h, t, s);
                for (int j = 0; j < g; j++) {
                    Nd4j.exec(new Mmul(group(gh, j, g), vv, group(ds, j, g), 1.0, 0.0, TRANS_B));
                }
                if (drop) {
                    ds.muli(dropMask);
                }
                INDArray rowDot = Nd4j.createUninitialized(dt, b, h, t);
                Nd4j.exec(new Dot(ds, probs, rowDot, 3));
                ds.subi(rowDot.reshape(b, h, t, 1));
                ds.muli(probs);
                if (built != null && built.hasEmptyRows()) {
                    // a fully masked row's weights are uniform but depend on no score
                    ds.muli(built.keep());
                }
                grads.queryKey(ds, qv, kv, needQ, needK, scale, g);
            }
            grads.flush();
        }, parents);
    }

    /** What {@link #attendWithProbabilities} returns. */
    public record WithProbabilities(Tensor context, Tensor probabilities) {
    }

    /**
     * {@link #attend} that also returns the attention probabilities {@code [B, H, T, S]} (the
     * softmax rows, before any attention dropout, so each row sums to 1) as a differentiable
     * tensor, for attention distillation and inspection. Composed from generic {@link Ops}
     * (key/value heads repeated, scores materialised, max-shifted softmax), so it is slower than
     * {@link #attend} and agrees with it to float rounding; the context has the same layout as
     * {@link #attend}'s. Masked scores are replaced (not added to) as there; a row whose keys are
     * all masked gets uniform weights and no gradient. Dropout draws its mask from {@code rng}
     * through {@link Ops#dropout}, a different stream than the fused path's.
     */
    public static WithProbabilities attendWithProbabilities(Heads q, Heads k, Heads v, AttentionMask mask, double scale,
                                                            double dropoutP, Rng rng, boolean training, boolean mergedOutput) {
        return attendWithProbabilities(q, k, v, null, mask, scale, dropoutP, rng, training, mergedOutput);
    }

    /**
     * {@link #attendWithProbabilities} with an additive score bias:
     * {@code softmax(scale·q·kᵀ + scoreBias, masked)·v}. {@code scoreBias} broadcasts to the
     * scores {@code [B, H, T, S]} (T5's relative position bias is {@code [1, H, T, S]}) and is
     * differentiable (its gradient is the score gradient summed over the broadcast axes); null =
     * none. Masked scores are replaced after the bias is added, as Hugging Face's additive
     * minimum mask does in effect.
     */
    public static WithProbabilities attendWithProbabilities(Heads q, Heads k, Heads v, Tensor scoreBias, AttentionMask mask,
                                                            double scale, double dropoutP, Rng rng, boolean training,
                                                            boolean mergedOutput) {
        if (!(dropoutP >= 0.0 && dropoutP < 1.0)) {
            throw new IllegalArgumentException("attention dropout must be in [0, 1), got " + dropoutP);
        }
        Tensor q4 = q.asSplit();
        Tensor k4 = k.asSplit();
        Tensor v4 = v.asSplit();
        final long b = q4.size(0);
        final long h = q4.size(1);
        final long t = q4.size(2);
        final long hkv = k4.size(1);
        final long s = k4.size(2);
        if (k4.size(0) != b || v4.size(0) != b || k4.size(3) != q4.size(3) || v4.size(1) != hkv || v4.size(2) != s) {
            throw new IllegalArgumentException("attention shapes do not agree: q " + Arrays.toString(q4.shape())
                    + " [B,H,T,D], k " + Arrays.toString(k4.shape()) + " [B,Hkv,S,D], v " + Arrays.toString(v4.shape()) + " [B,Hkv,S,Dv]");
        }
        if (hkv <= 0 || h % hkv != 0) {
            throw new IllegalArgumentException("query heads " + h + " must be a multiple of key/value heads " + hkv);
        }
        final boolean drop = training && dropoutP > 0.0;
        if (drop && rng == null) {
            throw new IllegalArgumentException("attention dropout " + dropoutP + " in training needs an Rng");
        }
        if (h != hkv) {
            // query head i reads key/value head i / g (Hugging Face's repeat_kv order)
            long g = h / hkv;
            long[] idx = new long[(int) h];
            for (int i = 0; i < h; i++) {
                idx[i] = i / g;
            }
            INDArray ids = Nd4j.createFromArray(idx);
            k4 = Ops.indexSelect(k4, 1, ids);
            v4 = Ops.indexSelect(v4, 1, ids);
        }
        DataType dt = q4.value().dataType();
        Tensor scores = Ops.matmul(q4, k4, false, true);                                  // [B, H, T, S]
        if (scale != 1.0) {
            scores = Ops.mul(scores, scale);
        }
        if (scoreBias != null) {
            long[] bs = scoreBias.shape();
            if (bs.length != 4 || (bs[0] != 1 && bs[0] != b) || (bs[1] != 1 && bs[1] != h) || (bs[2] != 1 && bs[2] != t) || bs[3] != s) {
                throw new IllegalArgumentException("score bias " + Arrays.toString(bs) + " does not broadcast to scores ["
                        + b + ", " + h + ", " + t + ", " + s + "]");
            }
            scores = Ops.add(scores, scoreBias);
        }
        AttentionMask.Built built = mask == null ? null : mask.build(b, t, s, dt);
        if (built != null) {
            scores = Ops.maskedFill(scores, built.fill(), AttentionMask.MASKED_SCORE);
        }
        // exp(s − max) / Σ: the row max is a constant shift (same value and gradient); ND4J's
        // native softmax gives NaN on DOUBLE rows of large negative scores (a fully masked row)
        Tensor shifted = Ops.sub(scores, Tensor.constant(scores.value().max(true, 3)));
        Tensor e = Ops.exp(shifted);
        Tensor probs = Ops.div(e, Ops.sum(e, true, 3));
        Tensor attn = drop ? Ops.dropout(probs, dropoutP, true, rng) : probs;
        Tensor ctx = Ops.matmul(attn, v4);                                                // [B, H, T, Dv]
        if (mergedOutput) {
            ctx = Ops.reshape(Ops.permute(ctx, 0, 2, 1, 3), b, t, h * v4.size(3));
        }
        return new WithProbabilities(ctx, probs);
    }

    /**
     * The FLOAT path of {@link #attend}: the same products, with the softmax (masked, and the
     * attention dropout) and its backward as fused Java kernels ({@link Kernels}) instead of
     * several native passes, the dropout mask regenerated from a counter-based hash instead of
     * stored, and the {@code [B, H, T, S]} buffers recycled through {@link BufferPool} (returned
     * after the backward pass, or at once when no graph is recorded).
     */
    private static Tensor attendFloat(Heads q, Heads k, Heads v, INDArray qv, INDArray kv, INDArray vv, AttentionMask mask,
                                      double scale, double dropoutP, Rng rng, boolean mergedOutput, int g) {
        final long b = qv.size(0);
        final long h = qv.size(1);
        final long t = qv.size(2);
        final long s = kv.size(2);
        final long dv = vv.size(3);
        final int len = (int) s;
        final boolean drop = rng != null;
        final boolean record = GradMode.isEnabled()
                && (q.tensor.requiresGrad() || k.tensor.requiresGrad() || v.tensor.requiresGrad());

        final INDArray probs = BufferPool.take(b, h, t, s);
        for (int j = 0; j < g; j++) {
            Nd4j.exec(new Mmul(group(qv, j, g), kv, group(probs, j, g), scale, 0.0, TRANS_B));
        }
        final AttentionMask.Built built = mask == null ? null : mask.build(b, t, s, DataType.FLOAT);
        final float[] keep = built == null || built.allVisible() ? null : built.keepRows();
        final IntUnaryOperator maskRow = keep == null ? r -> 0 : r -> built.maskRow(r, (int) h, (int) t);
        final long seed = drop ? rng.nextLong() : 0L;
        final AttnDropout dropout = drop ? new AttnDropout(dropoutP, seed) : null;
        final INDArray attn = drop ? BufferPool.take(b, h, t, s) : probs;
        softmaxForward(probs, drop ? attn : null, len, keep, maskRow, dropout);

        final INDArray out;
        final INDArray outHeads;
        if (mergedOutput) {
            out = Nd4j.createUninitialized(DataType.FLOAT, b, t, h * dv);
            outHeads = headsView(out, 0, h, dv);
        } else {
            out = Nd4j.createUninitialized(DataType.FLOAT, b, h, t, dv);
            outHeads = out;
        }
        for (int j = 0; j < g; j++) {
            Nd4j.exec(new Mmul(group(attn, j, g), vv, group(outHeads, j, g), 1.0, 0.0, NONE));
        }
        if (drop) {
            BufferPool.give(attn);   // regenerated in backward from the probabilities and the seed
        }
        Tensor[] parents = distinct(q.tensor, k.tensor, v.tensor);
        if (!record) {
            BufferPool.give(probs);
            return Tensor.fromOp(out, gradOut -> {
                throw new IllegalStateException("attention recorded without a graph");
            }, parents);
        }
        final AtomicBoolean released = new AtomicBoolean();
        return Tensor.fromOp(out, gradOut -> {
            if (released.get()) {
                throw new IllegalStateException("attention backward ran twice (its buffers were already released)");
            }
            final INDArray gh = mergedOutput ? headsView(gradOut, 0, h, dv) : gradOut;
            final boolean needQ = q.tensor.requiresGrad();
            final boolean needK = k.tensor.requiresGrad();
            final boolean needV = v.tensor.requiresGrad();
            Grads grads = new Grads(q, k, v);
            try {
                if (needV) {
                    // dv [B, Hkv, S, Dv] = Σ_j attn_jᵀ · dOut_j
                    INDArray a = probs;
                    if (drop) {
                        a = BufferPool.take(b, h, t, s);
                        applyDropout(probs, a, len, dropout);
                    }
                    grads.value(a, gh, g);
                    if (drop) {
                        BufferPool.give(a);
                    }
                }
                if (needQ || needK) {
                    // dAttn = dOut · vᵀ, then through the dropout and the softmax in one kernel
                    INDArray ds = BufferPool.take(b, h, t, s);
                    for (int j = 0; j < g; j++) {
                        Nd4j.exec(new Mmul(group(gh, j, g), vv, group(ds, j, g), 1.0, 0.0, TRANS_B));
                    }
                    softmaxBackward(probs, ds, len, keep, maskRow, dropout);
                    grads.queryKey(ds, qv, kv, needQ, needK, scale, g);
                    BufferPool.give(ds);
                }
            } finally {
                released.set(true);
                BufferPool.give(probs);
            }
            grads.flush();
        }, parents);
    }

    /** Attention dropout: keep probability 1 − p, survivors scaled by 1/(1 − p); the mask is a pure function of (seed, index). */
    record AttnDropout(double p, long seed) {
        int threshold() {
            return (int) Math.round(p * (1 << 24));
        }

        float scale() {
            return (float) (1.0 / (1.0 - p));
        }

        int seedLo() {
            return (int) seed;
        }

        int seedHi() {
            return (int) (seed >>> 32);
        }
    }

    /**
     * The dropout multiplier of element {@code idx}: {@code scale} or 0, from a 32-bit hash of the index
     * and the seed (murmur3's finaliser; its top 24 bits are compared with p·2^24).
     */
    static float dropFactor(int idx, int seedLo, int seedHi, int threshold, float scale) {
        int x = ((idx + seedHi) * 0x9E3779B9) ^ seedLo;
        x ^= x >>> 16;
        x *= 0x85EBCA6B;
        x ^= x >>> 13;
        x *= 0xC2B2AE35;
        x ^= x >>> 16;
        // kept when the top 24 bits are >= threshold: the sign of their difference, without a branch
        return scale * (1 - (((x >>> 8) - threshold) >>> 31));
    }

    /** Masked softmax of the score rows in place; with dropout also writes {@code attn = probs ⊙ mask}. */
    static void softmaxForward(INDArray probs, INDArray attn, int len, float[] keep, IntUnaryOperator maskRow, AttnDropout d) {
        final FloatBuffer pb = Kernels.buf(probs);
        final FloatBuffer ab = attn == null ? null : Kernels.buf(attn);
        final int po = Kernels.off(probs);
        final int ao = attn == null ? 0 : Kernels.off(attn);
        final int rows = (int) (probs.length() / len);
        final int thr = d == null ? 0 : d.threshold();
        final float sc = d == null ? 0f : d.scale();
        final int lo = d == null ? 0 : d.seedLo();
        final int hi = d == null ? 0 : d.seedHi();
        Kernels.parallelFor(rows, Math.max(1, 16384 / len), (from, to, w) -> {
            float[] row = Kernels.scratch(3, len);
            for (int r = from; r < to; r++) {
                int base = r * len;
                pb.get(po + base, row, 0, len);
                Kernels.softmaxRow(row, len, keep, keep == null ? 0 : maskRow.applyAsInt(r) * len);
                pb.put(po + base, row, 0, len);
                if (ab != null) {
                    for (int j = 0; j < len; j++) {
                        row[j] *= dropFactor(base + j, lo, hi, thr, sc);
                    }
                    ab.put(ao + base, row, 0, len);
                }
            }
        });
    }

    /** {@code out = probs ⊙ mask} (the dropped attention weights, regenerated for the backward pass). */
    static void applyDropout(INDArray probs, INDArray out, int len, AttnDropout d) {
        final FloatBuffer pb = Kernels.buf(probs);
        final FloatBuffer ob = Kernels.buf(out);
        final int po = Kernels.off(probs);
        final int oo = Kernels.off(out);
        final int rows = (int) (probs.length() / len);
        final int thr = d.threshold();
        final float sc = d.scale();
        final int lo = d.seedLo();
        final int hi = d.seedHi();
        Kernels.parallelFor(rows, Math.max(1, 16384 / len), (from, to, w) -> {
            float[] row = Kernels.scratch(3, len);
            for (int r = from; r < to; r++) {
                int base = r * len;
                pb.get(po + base, row, 0, len);
                for (int j = 0; j < len; j++) {
                    row[j] *= dropFactor(base + j, lo, hi, thr, sc);
                }
                ob.put(oo + base, row, 0, len);
            }
        });
    }

    /**
     * In place on {@code ds} (holding dAttn on entry): through the dropout mask, then the softmax,
     * {@code ds = P ⊙ (dP − Σ dP ⊙ P)}; rows whose keys are all masked get 0.
     */
    static void softmaxBackward(INDArray probs, INDArray ds, int len, float[] keep, IntUnaryOperator maskRow, AttnDropout d) {
        final FloatBuffer pb = Kernels.buf(probs);
        final FloatBuffer sb = Kernels.buf(ds);
        final int po = Kernels.off(probs);
        final int so = Kernels.off(ds);
        final int rows = (int) (probs.length() / len);
        final int thr = d == null ? 0 : d.threshold();
        final float sc = d == null ? 0f : d.scale();
        final int lo = d == null ? 0 : d.seedLo();
        final int hi = d == null ? 0 : d.seedHi();
        Kernels.parallelFor(rows, Math.max(1, 16384 / len), (from, to, w) -> {
            float[] p = Kernels.scratch(3, len);
            float[] dd = Kernels.scratch(4, len);
            for (int r = from; r < to; r++) {
                int base = r * len;
                pb.get(po + base, p, 0, len);
                sb.get(so + base, dd, 0, len);
                if (d != null) {
                    for (int j = 0; j < len; j++) {
                        dd[j] *= dropFactor(base + j, lo, hi, thr, sc);
                    }
                }
                boolean empty = false;
                if (keep != null) {
                    int ko = maskRow.applyAsInt(r) * len;
                    empty = true;
                    for (int j = 0; j < len && empty; j++) {
                        empty = keep[ko + j] == 0f;
                    }
                }
                if (empty) {
                    java.util.Arrays.fill(dd, 0, len, 0f);
                } else {
                    float dot = 0f;
                    for (int j = 0; j < len; j++) {
                        dot += dd[j] * p[j];
                    }
                    for (int j = 0; j < len; j++) {
                        dd[j] = p[j] * (dd[j] - dot);
                    }
                }
                sb.put(so + base, dd, 0, len);
            }
        });
    }

    /**
     * Where one backward pass writes dq, dk and dv: a gradient buffer per input tensor (q, k and v
     * may be views of one fused tensor and then share it), and which roles were written already,
     * so a later role that overlaps them accumulates instead of overwriting.
     */
    private static final class Grads {
        private final Heads q;
        private final Heads k;
        private final Heads v;
        private final Heads[] roles;
        private final Map<Tensor, INDArray> buffers = new IdentityHashMap<>();
        private final List<Heads> written = new ArrayList<>();

        Grads(Heads q, Heads k, Heads v) {
            this.q = q;
            this.k = k;
            this.v = v;
            this.roles = new Heads[] {q, k, v};
        }

        /** dv [B, Hkv, S, Dv] = Σ_j attn_jᵀ · dOut_j over the {@code g} query heads sharing each KV head. */
        void value(INDArray attn, INDArray gradOutHeads, int g) {
            INDArray dvv = v.view(buffer(buffers, v, roles));
            boolean acc = overlapsAny(v, written);
            for (int j = 0; j < g; j++) {
                Nd4j.exec(new Mmul(group(attn, j, g), group(gradOutHeads, j, g), dvv, 1.0, acc || j > 0 ? 1.0 : 0.0, TRANS_A));
            }
            written.add(v);
        }

        /** dq [B, H, T, D] = scale · dScores · k and dk [B, Hkv, S, D] = scale · Σ_j dScores_jᵀ · q_j, as needed. */
        void queryKey(INDArray ds, INDArray qv, INDArray kv, boolean needQ, boolean needK, double scale, int g) {
            if (needQ) {
                INDArray dqv = q.view(buffer(buffers, q, roles));
                boolean acc = overlapsAny(q, written);
                for (int j = 0; j < g; j++) {
                    Nd4j.exec(new Mmul(group(ds, j, g), kv, group(dqv, j, g), scale, acc ? 1.0 : 0.0, NONE));
                }
                written.add(q);
            }
            if (needK) {
                INDArray dkv = k.view(buffer(buffers, k, roles));
                boolean acc = overlapsAny(k, written);
                for (int j = 0; j < g; j++) {
                    Nd4j.exec(new Mmul(group(ds, j, g), group(qv, j, g), dkv, scale, acc || j > 0 ? 1.0 : 0.0, TRANS_A));
                }
                written.add(k);
            }
        }

        /** Hands each input tensor its gradient buffer. */
        void flush() {
            for (Map.Entry<Tensor, INDArray> e : buffers.entrySet()) {
                e.getKey().accumulateGrad(e.getValue());
            }
        }
    }

    /**
     * The gradient buffer for {@code role}'s tensor, shared by every role reading the same
     * tensor (GPT-2's fused {@code c_attn}: q, k and v are column blocks of one tensor).
     * Uninitialised when those roles' views tile the tensor exactly (each position is then first
     * written with {@code beta = 0}); zeros when they leave columns uncovered or overlap partially.
     */
    private static INDArray buffer(Map<Tensor, INDArray> buffers, Heads role, Heads[] all) {
        INDArray buf = buffers.get(role.tensor);
        if (buf != null) {
            return buf;
        }
        Tensor t = role.tensor;
        boolean tiled = true;
        if (role.merged) {
            List<Heads> sharing = new ArrayList<>();
            for (Heads o : all) {
                if (o.tensor == t) {
                    sharing.add(o);
                }
            }
            long cols = 0;
            for (int i = 0; i < sharing.size(); i++) {
                cols += sharing.get(i).columns();
                for (int j = 0; j < i; j++) {
                    tiled &= !sharing.get(i).overlaps(sharing.get(j));
                }
            }
            tiled &= cols == t.size(2);
        }
        DataType dt = t.value().dataType();
        buf = tiled ? Nd4j.createUninitialized(dt, t.shape()) : Nd4j.zeros(dt, t.shape());
        buffers.put(t, buf);
        return buf;
    }

    private static boolean overlapsAny(Heads role, List<Heads> written) {
        for (Heads w : written) {
            if (w.overlaps(role)) {
                return true;
            }
        }
        return false;
    }

    private static Tensor[] distinct(Tensor a, Tensor b, Tensor c) {
        List<Tensor> out = new ArrayList<>(3);
        for (Tensor x : new Tensor[]{a, b, c}) {
            boolean seen = false;
            for (Tensor y : out) {
                seen |= y == x;
            }
            if (!seen) {
                out.add(x);
            }
        }
        return out.toArray(new Tensor[0]);
    }

    /**
     * {@code [B, n, len, d]} view over columns {@code [colOffset, colOffset + n·d)} of
     * {@code base [B, len, C]} (any strides): head {@code i} is column block {@code i}.
     */
    static INDArray headsView(INDArray base, long colOffset, long n, long d) {
        if (base.rank() != 3) {
            throw new IllegalArgumentException("expected [batch, len, C], got " + Arrays.toString(base.shape()));
        }
        long[] st = base.stride();
        return Nd4j.create(base.data(), new long[]{base.size(0), n, base.size(1), d},
                new long[]{st[0], d * st[2], st[1], st[2]}, base.offset() + colOffset * st[2], 'c');
    }

    /**
     * Group member {@code j} of {@code x [B, H, len, d]}: heads {@code j, j+g, j+2g, …} as a
     * strided view {@code [B, H/g, len, d]} (query head {@code kv·g + j} pairs with kv head {@code kv}).
     */
    static INDArray group(INDArray x, int j, int g) {
        if (g == 1) {
            return x;
        }
        long[] st = x.stride();
        return Nd4j.create(x.data(), new long[]{x.size(0), x.size(1) / g, x.size(2), x.size(3)},
                new long[]{st[0], g * st[1], st[2], st[3]}, x.offset() + j * st[1], 'c');
    }

    /**
     * Row softmax over the last axis, in place. FLOAT uses ND4J's native op (the fastest here, and
     * correct for rows of masked scores); ND4J M2.1's native softmax returns NaN for DOUBLE rows
     * of large negative values (e.g. a fully masked row), so other types use the max-shifted
     * composition.
     */
    static void softmaxLastAxisInPlace(INDArray x) {
        if (x.dataType() == DataType.FLOAT) {
            Nd4j.exec(new SoftMax(x, x, -1));
            return;
        }
        int last = x.rank() - 1;
        x.subi(x.max(true, last));
        Transforms.exp(x, false);
        x.divi(x.sum(true, last));
    }

    /** Inverted-dropout multipliers: {@code 1/(1-p)} with probability {@code 1-p}, else 0; seeded from {@code rng}. */
    static INDArray dropoutMask(DataType dt, long[] shape, double p, Rng rng) {
        INDArray m = Nd4j.createUninitialized(dt, shape);
        org.nd4j.linalg.api.rng.Random r = NATIVE_RNG.get();
        r.setSeed(rng.nextLong());
        Nd4j.getExecutioner().exec(new BernoulliDistribution(m, 1.0 - p), r);
        return m.muli(1.0 / (1.0 - p));
    }
}
