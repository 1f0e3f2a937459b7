package org.peft4j.lora;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.tensor.Rng;

import java.util.Locale;

/**
 * The LoRA initializations of PEFT's {@code LoraLayer.update_layer} / {@code reset_lora_parameters}:
 * <ul>
 *   <li>{@code true}: A Kaiming-uniform with a = √5 (uniform in ±1/√in, PyTorch's Linear default), B zero;</li>
 *   <li>{@code "gaussian"}: A ~ N(0, std = 1/r), B zero;</li>
 *   <li>{@code false}: no reset, so both keep the Linear default (A uniform ±1/√in, B uniform ±1/√r)
 *       and a fresh adapter is not the identity;</li>
 *   <li>{@code "pissa"}: W = U·S·Vᵀ, S_r ← S[:r]/s, A = diag(√S_r)·Vᵀ[:r], B = U[:, :r]·diag(√S_r),
 *       and W is replaced by the residual W − s·B·A ({@code "pissa_niter_N"} uses the exact SVD too);</li>
 *   <li>{@code "olora"}: W = Q·R, B = Q[:, :r], A = R[:r], W ← W − s·B·A.</li>
 * </ul>
 * For an embedding, {@code true}/{@code "gaussian"} give A zero and B ~ N(0, 1) (the lookup side
 * starts at zero), and {@code false} gives both N(0, 1), as PEFT.
 *
 * <p>Random numbers come from the given {@link Rng}, A first then B, in row-major order.
 */
final class LoraInit {
    private LoraInit() {
    }

    static INDArray uniform(Rng rng, double bound, DataType dt, long rows, long cols) {
        double[] v = new double[Math.toIntExact(rows * cols)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (2.0 * rng.nextDouble() - 1.0) * bound;
        }
        return Nd4j.createFromArray(v).reshape('c', rows, cols).castTo(dt);
    }

    static INDArray normal(Rng rng, double std, DataType dt, long rows, long cols) {
        double[] v = new double[Math.toIntExact(rows * cols)];
        for (int i = 0; i < v.length; i++) {
            v[i] = rng.nextGaussian() * std;
        }
        return Nd4j.createFromArray(v).reshape('c', rows, cols).castTo(dt);
    }

    /** {A [r, in], B [out, r]} for a linear layer; pissa/olora also rewrite the layer's base weight. */
    static INDArray[] linearFactors(LoraLinear layer, String init, int r, double scaling, Rng rng, DataType dt) {
        long in = layer.inFeatures();
        long out = layer.outFeatures();
        String mode = init.toLowerCase(Locale.ROOT);
        if (mode.equals("true")) {
            return new INDArray[]{uniform(rng, 1.0 / Math.sqrt(in), dt, r, in), Nd4j.zeros(dt, out, r)};
        }
        if (mode.equals("gaussian")) {
            return new INDArray[]{normal(rng, 1.0 / r, dt, r, in), Nd4j.zeros(dt, out, r)};
        }
        if (mode.equals("false")) {
            INDArray a = uniform(rng, 1.0 / Math.sqrt(in), dt, r, in);
            INDArray b = uniform(rng, 1.0 / Math.sqrt(r), dt, out, r);
            return new INDArray[]{a, b};
        }
        if (mode.equals("pissa") || mode.startsWith("pissa_niter_")) {
            requireRank(r, in, out, init);
            INDArray w = layer.baseWeightOutIn().castTo(DataType.DOUBLE);
            LinAlg.SVD svd = LinAlg.svd(w);
            INDArray sr = svd.s().get(NDArrayIndex.interval(0, r)).div(scaling);
            INDArray sq = org.nd4j.linalg.ops.transforms.Transforms.sqrt(sr, true);
            INDArray a = svd.vt().get(NDArrayIndex.interval(0, r), NDArrayIndex.all()).mulColumnVector(sq.reshape(r, 1));
            INDArray b = svd.u().get(NDArrayIndex.all(), NDArrayIndex.interval(0, r)).mulRowVector(sq.reshape(1, r));
            layer.setBaseWeightOutIn(w.sub(b.mmul(a).muli(scaling)));
            return new INDArray[]{a.castTo(dt).dup('c'), b.castTo(dt).dup('c')};
        }
        if (mode.equals("olora")) {
            requireRank(r, in, out, init);
            INDArray w = layer.baseWeightOutIn().castTo(DataType.DOUBLE);
            LinAlg.QR qr = LinAlg.qr(w);
            INDArray b = qr.q().get(NDArrayIndex.all(), NDArrayIndex.interval(0, r)).dup('c');
            INDArray a = qr.r().get(NDArrayIndex.interval(0, r), NDArrayIndex.all()).dup('c');
            layer.setBaseWeightOutIn(w.sub(b.mmul(a).muli(scaling)));
            return new INDArray[]{a.castTo(dt).dup('c'), b.castTo(dt).dup('c')};
        }
        throw new IllegalArgumentException("unknown init_lora_weights '" + init + "'");
    }

    /** {A [r, vocab], B [dim, r]} for an embedding. */
    static INDArray[] embeddingFactors(long vocab, long dim, String init, int r, Rng rng, DataType dt) {
        String mode = init.toLowerCase(Locale.ROOT);
        if (mode.equals("true") || mode.equals("gaussian")) {
            return new INDArray[]{Nd4j.zeros(dt, r, vocab), normal(rng, 1.0, dt, dim, r)};
        }
        if (mode.equals("false")) {
            INDArray a = normal(rng, 1.0, dt, r, vocab);
            INDArray b = normal(rng, 1.0, dt, dim, r);
            return new INDArray[]{a, b};
        }
        throw new IllegalArgumentException("init_lora_weights '" + init + "' is not supported for embedding layers "
                + "(true, false or \"gaussian\")");
    }

    private static void requireRank(int r, long in, long out, String init) {
        if (r > Math.min(in, out)) {
            throw new IllegalArgumentException("init_lora_weights '" + init + "' needs r <= min(in, out) = " + Math.min(in, out)
                    + ", got r = " + r);
        }
    }
}
