package org.peft4j.lora;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.peft.MixedBatch;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;

/**
 * The LoRA branches as fused differentiable operations on top of a base layer's output.
 *
 * <p>Each op takes the base output {@code result}, computes the adapter's contribution with two
 * thin GEMMs ({@code x·Aᵀ}, then {@code ·Bᵀ}; never the dense {@code B·A} in the plain LoRA
 * path) and adds it into a copy of {@code result}. With {@code rows} non-null only those entries
 * of the leading (batch) axis take the adapter (mixed-adapter batches); the others pass through.
 *
 * <p>Backward: {@code result} receives the output gradient unchanged; {@code A}, {@code B}, the
 * DoRA magnitude and {@code x} receive theirs only when they require gradients (a frozen factor
 * costs no GEMM).
 */
public final class LoraOps {
    private LoraOps() {
    }

    /** A dropout mask {@code [n, in]} with entries 0 or 1/(1-p), or null when dropout is off. */
    static INDArray dropoutMask(DataType dt, long n, long in, double p, boolean training, Rng rng) {
        if (!training || p == 0.0) {
            return null;
        }
        if (rng == null) {
            throw new IllegalArgumentException("LoRA dropout p=" + p + " in training needs an Rng");
        }
        long len = n * in;
        if (len > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("LoRA input too large for a dropout mask: " + n + " x " + in);
        }
        INDArray mask;
        if (dt == DataType.DOUBLE) {
            double keep = 1.0 / (1.0 - p);
            double[] m = new double[(int) len];
            for (int i = 0; i < m.length; i++) {
                m[i] = rng.nextFloat() < p ? 0.0 : keep;
            }
            mask = Nd4j.createFromArray(m);
        } else {
            float keep = (float) (1.0 / (1.0 - p));
            float[] m = new float[(int) len];
            for (int i = 0; i < m.length; i++) {
                m[i] = rng.nextFloat() < p ? 0f : keep;
            }
            mask = Nd4j.createFromArray(m).castTo(dt);
        }
        return mask.reshape('c', n, in);
    }

    /** The rows of x that take part ({@code [k, ..., in]}), flattened to {@code [n, in]} (a copy or view; read-only). */
    private static INDArray rows2d(INDArray xv, int[] rows, long in) {
        INDArray sel = rows == null ? xv : MixedBatch.selectRows(xv, rows);
        return sel.reshape('c', sel.length() / in, in);
    }

    private static void checkLast(Tensor x, long in, String what) {
        if (x.rank() < 1 || x.size(-1) != in) {
            throw new IllegalArgumentException(what + ": input " + Arrays.toString(x.shape()) + " must end in " + in);
        }
    }

    /** Adds {@code d [n, out]} into a copy of {@code base} (all rows or rows {@code rows}); returns the copy. */
    private static INDArray addInto(INDArray base, int[] rows, INDArray d) {
        INDArray y = base.dup('c');
        if (rows == null) {
            y.reshape('c', d.size(0), d.size(1)).addi(d);
        } else {
            MixedBatch.addRows(y, rows, d);
        }
        return y;
    }

    /** The gradient rows that belong to the adapter, as {@code [n, out]}. */
    private static INDArray gradRows(INDArray g, int[] rows, long out) {
        INDArray sel = rows == null ? g : MixedBatch.selectRows(g, rows);
        return sel.reshape('c', sel.length() / out, out);
    }

    /** Scatters {@code dx2 [n, in]} back to x's shape (zeros outside {@code rows}). */
    private static INDArray scatterToX(INDArray dx2, int[] rows, long[] xShape) {
        if (rows == null) {
            return dx2.reshape('c', xShape);
        }
        INDArray dx = Nd4j.zeros(dx2.dataType(), xShape);
        MixedBatch.addRows(dx, rows, dx2);
        return dx;
    }

    /**
     * Plain LoRA: {@code result + s·(drop(x)·Aᵀ)·Bᵀ}. x {@code [..., in]}, A {@code [r, in]},
     * B {@code [out, r]}, result {@code [..., out]}.
     */
    public static Tensor loraAdd(Tensor result, Tensor x, Tensor a, Tensor b, double scaling,
                                 double dropout, boolean training, Rng rng, int[] rows) {
        final long in = a.size(1);
        final long r = a.size(0);
        final long out = b.size(0);
        checkLast(x, in, "LoRA");
        if (b.size(1) != r || result.size(-1) != out) {
            throw new IllegalArgumentException("LoRA shapes do not fit: A " + Arrays.toString(a.shape()) + ", B "
                    + Arrays.toString(b.shape()) + ", base output " + Arrays.toString(result.shape()));
        }
        final DataType dt = x.value().dataType();
        final INDArray x2 = rows2d(x.value(), rows, in);
        final long n = x2.size(0);
        final INDArray mask = dropoutMask(dt, n, in, dropout, training, rng);
        final INDArray xd = mask == null ? x2 : x2.mul(mask);
        final INDArray h = Nd4j.createUninitialized(dt, n, r);
        Nd4j.gemm(xd, a.value(), h, false, true, 1.0, 0.0);             // [n, r] = xd·Aᵀ
        final INDArray y;
        if (rows == null) {
            // accumulate s·h·Bᵀ straight into a copy of the base output (beta = 1): no [n, out] temporary
            y = result.value().dup('c');
            Nd4j.gemm(h, b.value(), y.reshape('c', n, out), false, true, scaling, 1.0);
        } else {
            INDArray delta = Nd4j.createUninitialized(dt, n, out);
            Nd4j.gemm(h, b.value(), delta, false, true, scaling, 0.0);  // [n, out] = s·h·Bᵀ
            y = addInto(result.value(), rows, delta);
        }
        final long[] xShape = x.shape();
        return Tensor.fromOp(y, g -> {
            if (result.requiresGrad()) {
                result.accumulateGrad(g);
            }
            boolean needA = a.requiresGrad();
            boolean needX = x.requiresGrad();
            if (!b.requiresGrad() && !needA && !needX) {
                return;
            }
            INDArray gs = gradRows(g, rows, out);
            if (b.requiresGrad()) {
                INDArray db = Nd4j.createUninitialized(dt, out, r);
                Nd4j.gemm(gs, h, db, true, false, scaling, 0.0);          // [out, r] = s·gsᵀ·h
                b.accumulateGrad(db);
            }
            if (needA || needX) {
                INDArray gh = Nd4j.createUninitialized(dt, n, r);
                Nd4j.gemm(gs, b.value(), gh, false, false, scaling, 0.0); // [n, r] = s·gs·B
                if (needA) {
                    INDArray da = Nd4j.createUninitialized(dt, r, in);
                    Nd4j.gemm(gh, xd, da, true, false, 1.0, 0.0);         // [r, in] = ghᵀ·xd
                    a.accumulateGrad(da);
                }
                if (needX) {
                    INDArray dx2 = Nd4j.createUninitialized(dt, n, in);
                    Nd4j.gemm(gh, a.value(), dx2, false, false, 1.0, 0.0); // [n, in] = gh·A
                    if (mask != null) {
                        dx2.muli(mask);
                    }
                    x.accumulateGrad(scatterToX(dx2, rows, xShape));
                }
            }
        }, result, x, a, b);
    }

    /** Row L2 norms of {@code W + s·B·A} ({@code [out]}), the DoRA weight norm (a constant in backward). */
    public static INDArray doraWeightNorm(INDArray w, INDArray a, INDArray b, double scaling) {
        INDArray wn = w.dup('c');
        Nd4j.gemm(b, a, wn, false, false, scaling, 1.0);               // W + s·B·A, [out, in]
        return wn.norm2(1);
    }

    /**
     * DoRA (PEFT's {@code DoraLinearLayer}): with {@code c = m / ‖W + s·B·A‖_row} (norm detached),
     * {@code result + (c − 1)⊙(drop(x)·Wᵀ) + c⊙(s·drop(x)·Aᵀ·Bᵀ)}. Without dropout this is
     * {@code c⊙(W·x + s·B·A·x) + bias}. W {@code [out, in]} is a constant (the frozen base weight).
     */
    public static Tensor doraAdd(Tensor result, Tensor x, INDArray w, Tensor a, Tensor b, Tensor magnitude,
                                 double scaling, double dropout, boolean training, Rng rng, int[] rows) {
        final long in = a.size(1);
        final long r = a.size(0);
        final long out = b.size(0);
        checkLast(x, in, "DoRA");
        if (b.size(1) != r || result.size(-1) != out || w.size(0) != out || w.size(1) != in
                || magnitude.length() != out) {
            throw new IllegalArgumentException("DoRA shapes do not fit: W " + Arrays.toString(w.shape()) + ", A "
                    + Arrays.toString(a.shape()) + ", B " + Arrays.toString(b.shape()) + ", magnitude "
                    + Arrays.toString(magnitude.shape()) + ", base output " + Arrays.toString(result.shape()));
        }
        final DataType dt = x.value().dataType();
        final INDArray wv = w.dataType() == dt ? w : w.castTo(dt);
        final INDArray norm = doraWeightNorm(wv, a.value(), b.value(), scaling);      // [out]
        final INDArray c = magnitude.value().reshape(out).div(norm);                 // [out]
        final INDArray x2 = rows2d(x.value(), rows, in);
        final long n = x2.size(0);
        final INDArray mask = dropoutMask(dt, n, in, dropout, training, rng);
        final INDArray xd = mask == null ? x2 : x2.mul(mask);
        final INDArray z = Nd4j.createUninitialized(dt, n, out);
        Nd4j.gemm(xd, wv, z, false, true, 1.0, 0.0);                   // [n, out] = xd·Wᵀ
        final INDArray h = Nd4j.createUninitialized(dt, n, r);
        Nd4j.gemm(xd, a.value(), h, false, true, 1.0, 0.0);            // [n, r]
        final INDArray l = Nd4j.createUninitialized(dt, n, out);
        Nd4j.gemm(h, b.value(), l, false, true, scaling, 0.0);         // [n, out] = s·h·Bᵀ
        final INDArray cRow = c.reshape(1, out);
        final INDArray delta = z.mulRowVector(cRow.sub(1.0)).addi(l.mulRowVector(cRow));
        final INDArray y = addInto(result.value(), rows, delta);
        final long[] xShape = x.shape();
        final long[] mShape = magnitude.shape();
        return Tensor.fromOp(y, g -> {
            if (result.requiresGrad()) {
                result.accumulateGrad(g);
            }
            INDArray gs = gradRows(g, rows, out);
            if (magnitude.requiresGrad()) {
                // dL/dm_j = Σ_n g_nj (z_nj + l_nj) / norm_j
                INDArray dm = gs.mul(z.add(l)).sum(0).divi(norm);
                magnitude.accumulateGrad(dm.reshape(mShape));
            }
            boolean needA = a.requiresGrad();
            boolean needX = x.requiresGrad();
            if (!b.requiresGrad() && !needA && !needX) {
                return;
            }
            INDArray gl = gs.mulRowVector(cRow);                       // gradient of the LoRA term
            if (b.requiresGrad()) {
                INDArray db = Nd4j.createUninitialized(dt, out, r);
                Nd4j.gemm(gl, h, db, true, false, scaling, 0.0);
                b.accumulateGrad(db);
            }
            if (needA || needX) {
                INDArray gh = Nd4j.createUninitialized(dt, n, r);
                Nd4j.gemm(gl, b.value(), gh, false, false, scaling, 0.0);
                if (needA) {
                    INDArray da = Nd4j.createUninitialized(dt, r, in);
                    Nd4j.gemm(gh, xd, da, true, false, 1.0, 0.0);
                    a.accumulateGrad(da);
                }
                if (needX) {
                    INDArray dx2 = Nd4j.createUninitialized(dt, n, in);
                    Nd4j.gemm(gh, a.value(), dx2, false, false, 1.0, 0.0);
                    INDArray gz = gs.mulRowVector(cRow.sub(1.0));
                    Nd4j.gemm(gz, wv, dx2, false, false, 1.0, 1.0);     // += ((c−1)⊙g)·W
                    if (mask != null) {
                        dx2.muli(mask);
                    }
                    x.accumulateGrad(scatterToX(dx2, rows, xShape));
                }
            }
        }, result, x, a, b, magnitude);
    }

    /**
     * LoRA on an embedding (PEFT's {@code lora.Embedding}): {@code result + s·(Aᵀ[ids])·Bᵀ} with
     * A {@code [r, vocab]} (its columns looked up by id) and B {@code [dim, r]}. The column of
     * {@code paddingIdx} (when ≥ 0) gets no gradient, as {@code F.embedding(padding_idx=…)}.
     */
    public static Tensor embeddingAdd(Tensor result, INDArray ids, Tensor a, Tensor b, double scaling, int paddingIdx,
                                      int[] rows) {
        final long r = a.size(0);
        final long vocab = a.size(1);
        final long dim = b.size(0);
        if (b.size(1) != r || result.size(-1) != dim) {
            throw new IllegalArgumentException("LoRA embedding shapes do not fit: A " + Arrays.toString(a.shape()) + ", B "
                    + Arrays.toString(b.shape()) + ", base output " + Arrays.toString(result.shape()));
        }
        final DataType dt = result.value().dataType();
        INDArray idSel = rows == null ? ids : MixedBatch.selectRows(ids, rows);
        final long[] idv = idSel.castTo(DataType.INT64).reshape(idSel.length()).toLongVector();
        final int n = idv.length;
        for (long id : idv) {
            if (id < 0 || id >= vocab) {
                throw new IllegalArgumentException("LoRA embedding: id " + id + " out of range [0, " + vocab + ")");
            }
        }
        // h[i, :] = A[:, id_i]  ([n, r]); gathered from Aᵀ in plain Java (r is small)
        final double[] at = a.value().transpose().dup('c').castTo(DataType.DOUBLE).data().asDouble();
        double[] hv = new double[(int) (n * r)];
        for (int i = 0; i < n; i++) {
            System.arraycopy(at, (int) (idv[i] * r), hv, (int) (i * r), (int) r);
        }
        final INDArray h = Nd4j.createFromArray(hv).reshape('c', n, r).castTo(dt);
        final INDArray delta = Nd4j.createUninitialized(dt, n, dim);
        Nd4j.gemm(h, b.value(), delta, false, true, scaling, 0.0);      // [n, dim] = s·h·Bᵀ
        final INDArray y = addInto(result.value(), rows, delta);
        return Tensor.fromOp(y, g -> {
            if (result.requiresGrad()) {
                result.accumulateGrad(g);
            }
            if (!a.requiresGrad() && !b.requiresGrad()) {
                return;
            }
            INDArray gs = gradRows(g, rows, dim);
            if (b.requiresGrad()) {
                INDArray db = Nd4j.createUninitialized(dt, dim, r);
                Nd4j.gemm(gs, h, db, true, false, scaling, 0.0);          // [dim, r]
                b.accumulateGrad(db);
            }
            if (a.requiresGrad()) {
                INDArray gh = Nd4j.createUninitialized(dt, n, r);
                Nd4j.gemm(gs, b.value(), gh, false, false, scaling, 0.0); // [n, r]
                double[] ghv = gh.castTo(DataType.DOUBLE).data().asDouble();
                double[] dat = new double[(int) (vocab * r)];              // dAᵀ [vocab, r]
                for (int i = 0; i < n; i++) {
                    if (idv[i] == paddingIdx) {
                        continue;
                    }
                    int base = (int) (idv[i] * r);
                    for (int k = 0; k < r; k++) {
                        dat[base + k] += ghv[(int) (i * r) + k];
                    }
                }
                INDArray dA = Nd4j.createFromArray(dat).reshape('c', vocab, r).transpose().dup('c').castTo(dt);
                a.accumulateGrad(dA);
            }
        }, result, a, b);
    }
}
