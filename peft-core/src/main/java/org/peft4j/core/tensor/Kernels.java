package org.peft4j.core.tensor;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;

import java.nio.FloatBuffer;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Fused fp32 kernels for the training hot path, in plain Java: element-wise work that ND4J would
 * run as several native passes (each allocating a temporary and synchronising its thread pool)
 * runs here as one pass over the data, row by row or in cache-sized chunks.
 *
 * <p>How: every kernel copies a row or chunk of a {@code FLOAT}, c-contiguous ND4J array into a
 * per-thread {@code float[]} (a bulk copy), computes on the heap array with simple loops that
 * HotSpot's C2 compiler turns into SIMD code, and copies the result back. The transcendental
 * functions are this class's own branch-free, vectorisable approximations ({@link #exp} with a
 * relative error below 2e-7 on [-21, 0]; {@link #erf} with an absolute error below 4e-7), so no
 * loop calls {@code Math.exp}, which C2 cannot vectorise.
 *
 * <p>Work is split into chunks claimed dynamically by the calling thread and by helper threads
 * (together {@link #threads()}, default {@code OMP_NUM_THREADS} or the number of processors), so
 * a helper that the OS does not schedule in time costs nothing: the caller takes its chunks.
 *
 * <p>Public for the nn and model packages; not a stable API.
 */
public final class Kernels {
    private Kernels() {
    }

    // ---- threading ---------------------------------------------------------------------------------

    private static final int THREADS = configuredThreads();
    private static final ExecutorService POOL = THREADS > 1 ? Executors.newFixedThreadPool(THREADS - 1, r -> {
        Thread t = new Thread(r, "peft4j-kernel");
        t.setDaemon(true);
        return t;
    }) : null;

    private static int configuredThreads() {
        Integer prop = Integer.getInteger("peft4j.kernel.threads");
        if (prop != null && prop > 0) {
            return prop;
        }
        String omp = System.getenv("OMP_NUM_THREADS");
        if (omp != null) {
            try {
                int n = Integer.parseInt(omp.trim());
                if (n > 0) {
                    return n;
                }
            } catch (NumberFormatException ignored) {
                // fall through to the processor count
            }
        }
        return Runtime.getRuntime().availableProcessors();
    }

    /** Threads a kernel may use (the caller included). */
    public static int threads() {
        return THREADS;
    }

    /** The body of a parallel loop: processes items {@code [from, to)}; {@code worker} is 0 for the caller. */
    @FunctionalInterface
    public interface RangeBody {
        void run(int from, int to, int worker);
    }

    /**
     * Runs {@code body} over {@code [0, n)} in chunks of {@code chunk} items, claimed dynamically by the
     * caller and up to {@code threads() - 1} helpers. Runs inline when there is one chunk or one thread.
     */
    public static void parallelFor(int n, int chunk, RangeBody body) {
        int chunks = (n + chunk - 1) / chunk;
        if (chunks <= 1 || POOL == null) {
            body.run(0, n, 0);
            return;
        }
        AtomicInteger next = new AtomicInteger();
        int helpers = Math.min(THREADS - 1, chunks - 1);
        @SuppressWarnings("unchecked")
        Future<?>[] fs = new Future<?>[helpers];
        for (int h = 0; h < helpers; h++) {
            final int worker = h + 1;
            fs[h] = POOL.submit(() -> drain(n, chunk, chunks, next, body, worker));
        }
        drain(n, chunk, chunks, next, body, 0);
        for (Future<?> f : fs) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for a kernel thread", e);
            } catch (java.util.concurrent.ExecutionException e) {
                Throwable c = e.getCause();
                if (c instanceof RuntimeException re) {
                    throw re;
                }
                if (c instanceof Error er) {
                    throw er;
                }
                throw new IllegalStateException(c);
            }
        }
    }

    private static void drain(int n, int chunk, int chunks, AtomicInteger next, RangeBody body, int worker) {
        int c;
        while ((c = next.getAndIncrement()) < chunks) {
            int from = c * chunk;
            body.run(from, Math.min(n, from + chunk), worker);
        }
    }

    /** Rows per parallel chunk so that a chunk holds about 16K elements (at least one row). */
    static int rowChunk(long rowLen) {
        return (int) Math.max(1, 16384 / Math.max(1, rowLen));
    }

    // ---- array access ------------------------------------------------------------------------------

    /** True when {@code a} is FLOAT and its elements are contiguous in c order (any offset): the kernels' input contract. */
    public static boolean usable(INDArray a) {
        return a != null && a.dataType() == DataType.FLOAT && a.length() > 0 && a.length() < Integer.MAX_VALUE
                && a.ordering() == 'c' && Shape.hasDefaultStridesForShape(a) && !a.isEmpty();
    }

    /** A float view of {@code a}'s whole buffer; element i of {@code a} is at {@code off(a) + i}. */
    public static FloatBuffer buf(INDArray a) {
        return a.data().asNioFloat();
    }

    public static int off(INDArray a) {
        return (int) a.offset();
    }

    /** Per-thread scratch rows: {@code rows(worker thread)[k]} is a reusable array of at least the asked size. */
    private static final ThreadLocal<float[][]> SCRATCH = ThreadLocal.withInitial(() -> new float[8][0]);

    public static float[] scratch(int slot, int size) {
        float[][] s = SCRATCH.get();
        if (s[slot].length < size) {
            s[slot] = new float[Math.max(size, 1024)];
        }
        return s[slot];
    }

    // ---- vectorisable elementary functions -------------------------------------------------------------

    private static final float LOG2E = 1.4426950408889634f;
    /** 1.5·2^23: adding and subtracting it rounds a float of magnitude < 2^22 to the nearest integer. */
    private static final float ROUND = 12582912f;
    private static final float LN2_HI = 0.693145751953125f;
    private static final float LN2_LO = 1.428606765330187e-06f;
    /** Below this, {@link #exp} returns 0 (e^-21 = 7.6e-10 is below fp32 resolution next to any term near 1). */
    public static final float EXP_MIN = -21f;

    // e^r on [-ln2/2, ln2/2]: degree-6 least-squares fit in relative error (fitted for this class)
    private static final float E1 = 1.0000000360998793f;
    private static final float E2 = 0.49999995350283094f;
    private static final float E3 = 0.16666420909797366f;
    private static final float E4 = 0.04166772437597985f;
    private static final float E5 = 0.00837476696236717f;
    private static final float E6 = 0.00138592958844233f;

    /**
     * e^t for {@code t <= 0} with relative error below 2e-7; exactly 0 at or below {@link #EXP_MIN}.
     * t = n·ln2 + r with n rounded by the 1.5·2^23 trick, e^r by a polynomial, and 2^n as a
     * product of the exact powers 2^-16, 2^-8, 2^-4, 2^-2, 2^-1 picked by the bits of -n (an
     * integer in [0, 31)), each bit found by rounding, so only adds, multiplies, min and max occur.
     * The array form {@link #expInPlace} is what the kernels use: split in two loops small enough
     * for C2 to vectorise (one loop of all of it is not).
     */
    public static float exp(float t) {
        float[] v = {t};
        expInPlace(v, 1, new float[1]);
        return v[0];
    }

    /** {@code v[0, len) = e^v} for values {@code <= 0} (see {@link #exp}); {@code m} is scratch of at least len. */
    public static void expInPlace(float[] v, int len, float[] m) {
        for (int i = 0; i < len; i++) {
            float t = v[i];
            float x = Math.max(Math.min(t, 0f), EXP_MIN);
            float n = (x * LOG2E + ROUND) - ROUND;
            float r = (x - n * LN2_HI) - n * LN2_LO;
            float p = 1f + r * (E1 + r * (E2 + r * (E3 + r * (E4 + r * (E5 + r * E6)))));
            // 0 at or below the range: (t − EXP_MIN)·1e30 clamped to [0, 1] is a step without a branch
            v[i] = p * Math.min(1f, Math.max(0f, (t - EXP_MIN) * 1e30f));
            m[i] = -n;
        }
        for (int i = 0; i < len; i++) {
            float k = m[i];
            float q = ((k * 0.0625f - 0.46875f) + ROUND) - ROUND;   // bit 4 of k: 0 or 1
            k -= 16f * q;
            float p = 1f - q * (1f - 0x1p-16f);
            q = ((k * 0.125f - 0.4375f) + ROUND) - ROUND;
            k -= 8f * q;
            p *= 1f - q * (1f - 0x1p-8f);
            q = ((k * 0.25f - 0.375f) + ROUND) - ROUND;
            k -= 4f * q;
            p *= 1f - q * (1f - 0x1p-4f);
            q = ((k * 0.5f - 0.25f) + ROUND) - ROUND;
            k -= 2f * q;
            p *= 1f - q * 0.75f;
            p *= 1f - k * 0.5f;
            v[i] *= p;
        }
    }

    // erf(z) = z·P(z²)/Q(z²) on |z| <= 4 (rational least-squares fit made for this class; erf(4) rounds to 1 in fp32)
    private static final float P0 = 1.1283791792554050f;
    private static final float P1 = 1.8471938417584000e-01f;
    private static final float P2 = 5.4366752859550768e-02f;
    private static final float P3 = 3.8444002751242966e-03f;
    private static final float P4 = 3.8415619641176812e-04f;
    private static final float P5 = 4.8182486548874343e-06f;
    private static final float P6 = -1.3858302867361757e-08f;
    private static final float Q1 = 4.9703681985504528e-01f;
    private static final float Q2 = 1.1385927299188688e-01f;
    private static final float Q3 = 1.5468011572015756e-02f;
    private static final float Q4 = 1.3125799767690024e-03f;
    private static final float Q5 = 6.4371506594711910e-05f;

    /** erf(z) with absolute error below 4e-7 (branch-free, vectorisable). */
    public static float erf(float z) {
        float x = Math.max(-4f, Math.min(4f, z));
        float w = x * x;
        float p = P0 + w * (P1 + w * (P2 + w * (P3 + w * (P4 + w * (P5 + w * P6)))));
        float q = 1f + w * (Q1 + w * (Q2 + w * (Q3 + w * (Q4 + w * Q5))));
        return x * p / q;
    }

    private static final float INV_SQRT2 = (float) (1.0 / Math.sqrt(2.0));
    private static final float INV_SQRT_2PI = (float) (1.0 / Math.sqrt(2.0 * Math.PI));

    // ---- GELU ---------------------------------------------------------------------------------------

    private static final int CHUNK = 4096;

    /** {@code y = x·Φ(x)} (exact, erf form) for contiguous FLOAT x and y of equal length (y may be x). */
    public static void geluForward(INDArray x, INDArray y) {
        final FloatBuffer xb = buf(x);
        final FloatBuffer yb = buf(y);
        final int xo = off(x);
        final int yo = off(y);
        final int n = (int) x.length();
        parallelFor(n, CHUNK * 4, (from, to, w) -> {
            float[] v = scratch(0, CHUNK);
            float[] c = scratch(1, CHUNK);
            for (int s = from; s < to; s += CHUNK) {
                int len = Math.min(CHUNK, to - s);
                xb.get(xo + s, v, 0, len);
                // small loop bodies: C2 vectorises each of these, not their fusion
                for (int i = 0; i < len; i++) {
                    c[i] = erf(v[i] * INV_SQRT2);
                }
                for (int i = 0; i < len; i++) {
                    v[i] *= 0.5f + 0.5f * c[i];
                }
                yb.put(yo + s, v, 0, len);
            }
        });
    }

    /** {@code dx = g·(Φ(x) + x·φ(x))}; dx may alias g. */
    public static void geluBackward(INDArray x, INDArray g, INDArray dx) {
        final FloatBuffer xb = buf(x);
        final FloatBuffer gb = buf(g);
        final FloatBuffer db = buf(dx);
        final int xo = off(x);
        final int go = off(g);
        final int dox = off(dx);
        final int n = (int) x.length();
        parallelFor(n, CHUNK * 4, (from, to, w) -> {
            float[] v = scratch(0, CHUNK);
            float[] gv = scratch(1, CHUNK);
            float[] e = scratch(2, CHUNK);
            float[] tmp = scratch(3, CHUNK);
            for (int s = from; s < to; s += CHUNK) {
                int len = Math.min(CHUNK, to - s);
                xb.get(xo + s, v, 0, len);
                gb.get(go + s, gv, 0, len);
                for (int i = 0; i < len; i++) {
                    e[i] = -0.5f * v[i] * v[i];
                }
                expInPlace(e, len, tmp);                       // e^(−x²/2)
                for (int i = 0; i < len; i++) {
                    tmp[i] = erf(v[i] * INV_SQRT2);
                }
                for (int i = 0; i < len; i++) {
                    gv[i] *= 0.5f + 0.5f * tmp[i] + v[i] * INV_SQRT_2PI * e[i];
                }
                db.put(dox + s, gv, 0, len);
            }
        });
    }

    // ---- layer norm ------------------------------------------------------------------------------------

    /**
     * Layer norm over rows of length {@code dim}: {@code y = (s − μ)·rstd·γ + β} with
     * {@code s = a (+ b)} (b null: plain layer norm; else the residual sum, never stored).
     * Writes {@code y} and per-row {@code mean} and {@code rstd} ({@code float[rows]}); γ/β may be null.
     * Statistics are accumulated in double.
     */
    public static void layerNormForward(INDArray a, INDArray b, float[] gamma, float[] beta, double eps, int dim,
                                        INDArray y, float[] mean, float[] rstd) {
        final FloatBuffer ab = buf(a);
        final FloatBuffer bb = b == null ? null : buf(b);
        final FloatBuffer yb = buf(y);
        final int ao = off(a);
        final int bo = b == null ? 0 : off(b);
        final int yo = off(y);
        final int rows = (int) (a.length() / dim);
        parallelFor(rows, rowChunk(dim), (from, to, w) -> {
            float[] v = scratch(0, dim);
            float[] u = scratch(1, dim);
            for (int r = from; r < to; r++) {
                int base = r * dim;
                ab.get(ao + base, v, 0, dim);
                if (bb != null) {
                    bb.get(bo + base, u, 0, dim);
                    for (int j = 0; j < dim; j++) {
                        v[j] += u[j];
                    }
                }
                double sum = 0;
                for (int j = 0; j < dim; j++) {
                    sum += v[j];
                }
                float mu = (float) (sum / dim);
                double sq = 0;
                for (int j = 0; j < dim; j++) {
                    float d = v[j] - mu;
                    sq += d * d;
                }
                float rs = (float) (1.0 / Math.sqrt(sq / dim + eps));
                mean[r] = mu;
                rstd[r] = rs;
                if (gamma != null && beta != null) {
                    for (int j = 0; j < dim; j++) {
                        v[j] = (v[j] - mu) * rs * gamma[j] + beta[j];
                    }
                } else if (gamma != null) {
                    for (int j = 0; j < dim; j++) {
                        v[j] = (v[j] - mu) * rs * gamma[j];
                    }
                } else {
                    for (int j = 0; j < dim; j++) {
                        v[j] = (v[j] - mu) * rs + (beta != null ? beta[j] : 0f);
                    }
                }
                yb.put(yo + base, v, 0, dim);
            }
        });
    }

    /**
     * Backward of {@link #layerNormForward}: from {@code g} and the saved statistics, writes
     * {@code dx} (when non-null; the gradient of s, so of both a and b) and adds into
     * {@code dGamma}/{@code dBeta} ({@code double[dim]}, when non-null).
     * {@code dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))}, {@code dx̂ = g·γ}.
     */
    public static void layerNormBackward(INDArray a, INDArray b, float[] gamma, int dim, float[] mean, float[] rstd,
                                         INDArray g, INDArray dx, double[] dGamma, double[] dBeta) {
        final FloatBuffer ab = buf(a);
        final FloatBuffer bb = b == null ? null : buf(b);
        final FloatBuffer gb = buf(g);
        final FloatBuffer db = dx == null ? null : buf(dx);
        final int ao = off(a);
        final int bo = b == null ? 0 : off(b);
        final int go = off(g);
        final int dxo = dx == null ? 0 : off(dx);
        final int rows = (int) (a.length() / dim);
        final int workers = threads();
        final double[][] pg = dGamma == null ? null : new double[workers][dim];
        final double[][] pb = dBeta == null ? null : new double[workers][dim];
        parallelFor(rows, rowChunk(dim), (from, to, w) -> {
            float[] xh = scratch(0, dim);
            float[] u = scratch(1, dim);
            float[] gv = scratch(2, dim);
            double[] accG = pg == null ? null : pg[w];
            double[] accB = pb == null ? null : pb[w];
            for (int r = from; r < to; r++) {
                int base = r * dim;
                ab.get(ao + base, xh, 0, dim);
                if (bb != null) {
                    bb.get(bo + base, u, 0, dim);
                    for (int j = 0; j < dim; j++) {
                        xh[j] += u[j];
                    }
                }
                gb.get(go + base, gv, 0, dim);
                float mu = mean[r];
                float rs = rstd[r];
                for (int j = 0; j < dim; j++) {
                    xh[j] = (xh[j] - mu) * rs;
                }
                if (accG != null) {
                    for (int j = 0; j < dim; j++) {
                        accG[j] += gv[j] * xh[j];
                    }
                }
                if (accB != null) {
                    for (int j = 0; j < dim; j++) {
                        accB[j] += gv[j];
                    }
                }
                if (db != null) {
                    double s1 = 0;
                    double s2 = 0;
                    for (int j = 0; j < dim; j++) {
                        float d = gamma != null ? gv[j] * gamma[j] : gv[j];
                        u[j] = d;
                        s1 += d;
                        s2 += d * xh[j];
                    }
                    float m1 = (float) (s1 / dim);
                    float m2 = (float) (s2 / dim);
                    for (int j = 0; j < dim; j++) {
                        u[j] = rs * (u[j] - m1 - xh[j] * m2);
                    }
                    db.put(dxo + base, u, 0, dim);
                }
            }
        });
        for (int w = 0; w < workers; w++) {
            for (int j = 0; j < dim; j++) {
                if (pg != null) {
                    dGamma[j] += pg[w][j];
                }
                if (pb != null) {
                    dBeta[j] += pb[w][j];
                }
            }
        }
    }

    // ---- reductions ------------------------------------------------------------------------------------------

    /**
     * Column sums of a contiguous FLOAT {@code [rows, cols]} matrix (a bias gradient): each worker
     * adds whole rows into its own accumulator (a vectorisable loop), the partial sums are then
     * added in double.
     */
    public static float[] columnSums(INDArray a, int cols) {
        final FloatBuffer ab = buf(a);
        final int ao = off(a);
        final int rows = (int) (a.length() / cols);
        final float[][] partial = new float[threads()][];
        parallelFor(rows, Math.max(1, rowChunk(cols) * 4), (from, to, w) -> {
            float[] acc = partial[w];
            if (acc == null) {
                acc = new float[cols];
                partial[w] = acc;
            }
            float[] row = scratch(0, cols);
            float[] chunkAcc = scratch(1, cols);
            java.util.Arrays.fill(chunkAcc, 0, cols, 0f);
            for (int r = from; r < to; r++) {
                ab.get(ao + r * cols, row, 0, cols);
                for (int j = 0; j < cols; j++) {
                    chunkAcc[j] += row[j];
                }
            }
            for (int j = 0; j < cols; j++) {
                acc[j] += chunkAcc[j];
            }
        });
        double[] sum = new double[cols];
        for (float[] p : partial) {
            if (p != null) {
                for (int j = 0; j < cols; j++) {
                    sum[j] += p[j];
                }
            }
        }
        float[] out = new float[cols];
        for (int j = 0; j < cols; j++) {
            out[j] = (float) sum[j];
        }
        return out;
    }

    // ---- optimizer -----------------------------------------------------------------------------------------

    /**
     * One AdamW update in a single pass over contiguous FLOAT arrays of equal length (PyTorch's
     * {@code torch.optim.AdamW} arithmetic, in the order {@code AdamW.step} documents):
     * <pre>
     *   w ← w·(1 − lr·wd);  m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  w ← w − step·m / (√v + epsHat)
     * </pre>
     * with {@code step = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)} and {@code epsHat = ε·√(1 − β₂ᵗ)} computed by the caller
     * (the scalars in double, then rounded to float, as ND4J does with an op's scalar arguments).
     */
    public static void adamW(INDArray w, INDArray g, INDArray m, INDArray v, float decay, float beta1, float beta2,
                             float oneMinusBeta1, float oneMinusBeta2, float step, float epsHat) {
        final FloatBuffer wb = buf(w);
        final FloatBuffer gb = buf(g);
        final FloatBuffer mb = buf(m);
        final FloatBuffer vb = buf(v);
        final int wo = off(w);
        final int go = off(g);
        final int mo = off(m);
        final int vo = off(v);
        final int n = (int) w.length();
        final float ob1 = oneMinusBeta1;
        final float ob2 = oneMinusBeta2;
        parallelFor(n, CHUNK * 8, (from, to, worker) -> {
            float[] wv = scratch(0, CHUNK);
            float[] gv = scratch(1, CHUNK);
            float[] mv = scratch(2, CHUNK);
            float[] vv = scratch(3, CHUNK);
            for (int s = from; s < to; s += CHUNK) {
                int len = Math.min(CHUNK, to - s);
                wb.get(wo + s, wv, 0, len);
                gb.get(go + s, gv, 0, len);
                mb.get(mo + s, mv, 0, len);
                vb.get(vo + s, vv, 0, len);
                for (int i = 0; i < len; i++) {
                    float gi = gv[i];
                    mv[i] = beta1 * mv[i] + ob1 * gi;
                    vv[i] = beta2 * vv[i] + ob2 * (gi * gi);
                }
                // the rounding steps of the ND4J path: w·decay, √v, + ε̂, m / ·, w − step·(·)
                for (int i = 0; i < len; i++) {
                    wv[i] = wv[i] * decay - step * (mv[i] / ((float) Math.sqrt(vv[i]) + epsHat));
                }
                wb.put(wo + s, wv, 0, len);
                mb.put(mo + s, mv, 0, len);
                vb.put(vo + s, vv, 0, len);
            }
        });
    }

    // ---- softmax -----------------------------------------------------------------------------------------

    /**
     * Row softmax in place over rows of length {@code len} of {@code x}, with an optional key mask:
     * {@code keep} (a 0/1 row of length {@code len} per mask row, or null) selects the visible keys
     * of row {@code r} from mask row {@code maskRow.applyAsInt(r)}; hidden keys get probability 0,
     * and a row with no visible key becomes uniform (as a softmax over equal masked scores would).
     */
    public static void softmaxRows(INDArray x, int len, float[] keep, java.util.function.IntUnaryOperator maskRow) {
        final FloatBuffer xb = buf(x);
        final int xo = off(x);
        final int rows = (int) (x.length() / len);
        parallelFor(rows, rowChunk(len), (from, to, w) -> {
            float[] v = scratch(0, len);
            for (int r = from; r < to; r++) {
                int base = r * len;
                xb.get(xo + base, v, 0, len);
                softmaxRow(v, len, keep, keep == null ? 0 : maskRow.applyAsInt(r) * len);
                xb.put(xo + base, v, 0, len);
            }
        });
    }

    /** Softmax of {@code v[0, len)} in place; {@code keep[kOff + j]} = 0 hides key j (keep may be null). */
    public static void softmaxRow(float[] v, int len, float[] keep, int kOff) {
        float max = Float.NEGATIVE_INFINITY;
        boolean any = false;
        for (int j = 0; j < len; j++) {
            if (keep == null || keep[kOff + j] != 0f) {
                max = Math.max(max, v[j]);
                any = true;
            }
        }
        if (!any) {
            // every key hidden: uniform weights (the softmax of equal masked scores)
            java.util.Arrays.fill(v, 0, len, 1f / len);
            return;
        }
        for (int j = 0; j < len; j++) {
            v[j] -= max;
        }
        expInPlace(v, len, scratch(7, len));
        if (keep != null) {
            for (int j = 0; j < len; j++) {
                v[j] *= keep[kOff + j];
            }
        }
        float s0 = 0f;
        float s1 = 0f;
        float s2 = 0f;
        float s3 = 0f;
        int j = 0;
        for (; j + 3 < len; j += 4) {
            s0 += v[j];
            s1 += v[j + 1];
            s2 += v[j + 2];
            s3 += v[j + 3];
        }
        for (; j < len; j++) {
            s0 += v[j];
        }
        float inv = 1f / ((s0 + s1) + (s2 + s3));
        for (j = 0; j < len; j++) {
            v[j] *= inv;
        }
    }

    /**
     * Softmax backward in place: {@code ds = P ⊙ (dP − Σ_j dP ⊙ P)} over rows of length {@code len},
     * with {@code ds} holding dP on entry. Rows of a mask row without any visible key get 0
     * (their uniform weights depend on no score).
     */
    public static void softmaxBackwardRows(INDArray probs, INDArray ds, int len, float[] keep,
                                           java.util.function.IntUnaryOperator maskRow) {
        final FloatBuffer pb = buf(probs);
        final FloatBuffer sb = buf(ds);
        final int po = off(probs);
        final int so = off(ds);
        final int rows = (int) (probs.length() / len);
        parallelFor(rows, rowChunk(len), (from, to, w) -> {
            float[] p = scratch(0, len);
            float[] d = scratch(1, len);
            for (int r = from; r < to; r++) {
                int base = r * len;
                pb.get(po + base, p, 0, len);
                sb.get(so + base, d, 0, len);
                if (keep != null && emptyRow(keep, maskRow.applyAsInt(r) * len, len)) {
                    java.util.Arrays.fill(d, 0, len, 0f);
                } else {
                    float dot = 0;
                    for (int j = 0; j < len; j++) {
                        dot += d[j] * p[j];
                    }
                    for (int j = 0; j < len; j++) {
                        d[j] = p[j] * (d[j] - dot);
                    }
                }
                sb.put(so + base, d, 0, len);
            }
        });
    }

    private static boolean emptyRow(float[] keep, int off, int len) {
        for (int j = 0; j < len; j++) {
            if (keep[off + j] != 0f) {
                return false;
            }
        }
        return true;
    }
}
