package org.peft4j.lora;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Thin QR and SVD in double precision on LAPACK (ND4J's {@code geqrf}/{@code orgqr} and
 * {@code gesvd}), with the shapes {@code torch.linalg.qr} / {@code torch.linalg.svd(full_matrices=False)}
 * return. Used by the PiSSA and OLoRA initializations and by SVD adapter merging.
 *
 * <p>The SVD of a tall matrix goes through a thin QR first ({@code A = Q·R}, then the SVD of the
 * small square R), so memory stays {@code O(m·n)} instead of LAPACK's full {@code m×m} U.
 */
public final class LinAlg {
    private LinAlg() {
    }

    /** {@code A = Q·R}: Q {@code [m, k]} with orthonormal columns, R {@code [k, n]} upper trapezoidal, k = min(m, n). */
    public record QR(INDArray q, INDArray r) {
    }

    /** {@code A = U·diag(S)·Vt}: U {@code [m, k]}, S {@code [k]} descending, Vt {@code [k, n]}. */
    public record SVD(INDArray u, INDArray s, INDArray vt) {
    }

    /** Reduced QR as {@code torch.linalg.qr(A)} (LAPACK's Householder sign convention). Result is DOUBLE. */
    public static QR qr(INDArray a) {
        requireMatrix(a, "QR");
        INDArray d = a.castTo(DataType.DOUBLE);
        long m = d.size(0);
        long n = d.size(1);
        if (m >= n) {
            INDArray q = d.dup('f');
            INDArray r = Nd4j.create(DataType.DOUBLE, new long[]{n, n}, 'f');
            Nd4j.getBlasWrapper().lapack().geqrf(q, r);
            return new QR(q.dup('c'), upper(r).dup('c'));
        }
        // Wide: Householder QR only ever uses the first m columns to build Q (m×m); R = Qᵀ·A.
        QR left = qr(d.get(NDArrayIndex.all(), NDArrayIndex.interval(0, m)));
        INDArray r = left.q().transpose().mmul(d);
        INDArray rTri = upper(r);
        return new QR(left.q(), rTri.dup('c'));
    }

    /** Thin SVD as {@code torch.linalg.svd(A, full_matrices=False)}. Result is DOUBLE. */
    public static SVD svd(INDArray a) {
        requireMatrix(a, "SVD");
        INDArray d = a.castTo(DataType.DOUBLE);
        long m = d.size(0);
        long n = d.size(1);
        if (m < n) {
            SVD t = svd(d.transpose());
            return new SVD(t.vt().transpose().dup('c'), t.s(), t.u().transpose().dup('c'));
        }
        QR qr = qr(d);                       // Q [m, n], R [n, n]
        INDArray r = qr.r().dup('f');
        INDArray s = Nd4j.create(DataType.DOUBLE, n);
        INDArray ur = Nd4j.create(DataType.DOUBLE, new long[]{n, n}, 'f');
        INDArray vt = Nd4j.create(DataType.DOUBLE, new long[]{n, n}, 'f');
        Nd4j.getBlasWrapper().lapack().gesvd(r, s, ur, vt);
        INDArray u = qr.q().mmul(ur);
        return new SVD(u.dup('c'), s.dup('c'), vt.dup('c'));
    }

    /** Zeroes the strictly lower triangle (LAPACK leaves reflector data there). */
    private static INDArray upper(INDArray r) {
        INDArray out = r.dup('c');
        long rows = out.size(0);
        long cols = out.size(1);
        for (long i = 1; i < rows; i++) {
            for (long j = 0; j < Math.min(i, cols); j++) {
                out.putScalar(i, j, 0.0);
            }
        }
        return out;
    }

    private static void requireMatrix(INDArray a, String what) {
        if (a == null || a.rank() != 2 || a.length() == 0) {
            throw new IllegalArgumentException(what + " needs a non-empty 2-D matrix, got "
                    + (a == null ? "null" : java.util.Arrays.toString(a.shape())));
        }
        if (a.castTo(DataType.DOUBLE).isInfinite().any() || a.castTo(DataType.DOUBLE).isNaN().any()) {
            throw new IllegalArgumentException(what + " input contains NaN or infinite values");
        }
    }
}
