package org.peft4j.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.GradMode;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;

/**
 * A lookup table {@code weight [num, dim]}: integer ids of any shape → {@code ids.shape + [dim]}.
 *
 * <p>With a {@code paddingIdx} (PyTorch's {@code padding_idx}) that row is zero at initialisation
 * and receives no gradient from lookups, as in PyTorch (it still gets gradients from other uses
 * of the same weight, e.g. a tied LM head).
 */
public class Embedding extends Module implements EmbeddingLayer {
    private final int numEmbeddings;
    private final int embeddingDim;
    private final int paddingIdx;

    /** Weight drawn from N(0, 1), PyTorch's default. */
    public Embedding(int numEmbeddings, int embeddingDim, Rng rng) {
        this(numEmbeddings, embeddingDim, -1, rng);
    }

    /**
     * Weight drawn from N(0, 1); row {@code paddingIdx} (or none when negative) is zeroed. A null
     * {@code rng} gives zeros (for tables loaded right after).
     */
    public Embedding(int numEmbeddings, int embeddingDim, int paddingIdx, Rng rng) {
        if (numEmbeddings <= 0 || embeddingDim <= 0) {
            throw new IllegalArgumentException("Embedding needs positive sizes, got " + numEmbeddings + " x " + embeddingDim);
        }
        if (paddingIdx >= numEmbeddings) {
            throw new IllegalArgumentException("padding index " + paddingIdx + " out of range for " + numEmbeddings + " embeddings");
        }
        this.numEmbeddings = numEmbeddings;
        this.embeddingDim = embeddingDim;
        this.paddingIdx = paddingIdx;
        long n = (long) numEmbeddings * embeddingDim;
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("embedding table too large: " + numEmbeddings + " x " + embeddingDim);
        }
        if (rng == null) {
            registerParameter("weight", new Parameter(Nd4j.zeros(DataType.FLOAT, numEmbeddings, embeddingDim)));
            return;
        }
        float[] data = new float[(int) n];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) rng.nextGaussian();
        }
        if (paddingIdx >= 0) {
            Arrays.fill(data, paddingIdx * embeddingDim, (paddingIdx + 1) * embeddingDim, 0f);
        }
        registerParameter("weight", new Parameter(Nd4j.create(data, new long[]{numEmbeddings, embeddingDim}, 'c')));
    }

    /** Wraps an existing table {@code [num, dim]} (weights read from a checkpoint). */
    public Embedding(INDArray weight, int paddingIdx) {
        if (weight == null || weight.rank() != 2) {
            throw new IllegalArgumentException("Embedding weight must be [num, dim], got "
                    + (weight == null ? "null" : Arrays.toString(weight.shape())));
        }
        if (paddingIdx >= weight.size(0)) {
            throw new IllegalArgumentException("padding index " + paddingIdx + " out of range for " + weight.size(0) + " embeddings");
        }
        this.numEmbeddings = (int) weight.size(0);
        this.embeddingDim = (int) weight.size(1);
        this.paddingIdx = paddingIdx;
        registerParameter("weight", new Parameter(weight));
    }

    @Override
    public int numEmbeddings() {
        return numEmbeddings;
    }

    @Override
    public int embeddingDim() {
        return embeddingDim;
    }

    /** The padding row, or -1. */
    @Override
    public int paddingIdx() {
        return paddingIdx;
    }

    @Override
    public Parameter weight() {
        return parameter("weight");
    }

    @Override
    public Embedding deepCopy() {
        return withTrainingModeOf(new Embedding(weight().value().dup('c'), paddingIdx));
    }

    /** Rows of the table for integer {@code ids} of any shape → {@code ids.shape + [dim]}. */
    @Override
    public Tensor forward(INDArray ids) {
        if (ids == null || ids.length() == 0) {
            throw new IllegalArgumentException("Embedding needs a non-empty id array");
        }
        if (ids.dataType().isFPType()) {
            throw new IllegalArgumentException("Embedding ids must be integers, got " + ids.dataType());
        }
        long min = ids.minNumber().longValue();
        long max = ids.maxNumber().longValue();
        if (min < 0 || max >= numEmbeddings) {
            throw new IllegalArgumentException("Embedding ids must be in [0, " + numEmbeddings + "), found range ["
                    + min + ", " + max + "] in ids of shape " + Arrays.toString(ids.shape()));
        }
        Parameter w = weight();
        Tensor out = Ops.embedding(w, ids);
        if (paddingIdx < 0 || !w.requiresGrad() || !GradMode.isEnabled()) {
            return out;
        }
        // Keep the padding row's value but route no gradient into it:
        // out·keep + padRow·(1 − keep), keep = (id != paddingIdx), shape ids.shape + [1].
        INDArray isPad = ids.castTo(DataType.DOUBLE).eq(paddingIdx).castTo(w.value().dataType());
        if (isPad.sumNumber().doubleValue() == 0.0) {
            return out;
        }
        long[] colShape = Arrays.copyOf(ids.shape(), ids.rank() + 1);
        colShape[ids.rank()] = 1;
        INDArray padCol = isPad.reshape('c', colShape);
        INDArray keep = padCol.rsub(1.0);
        // outer product [n, 1]·[1, dim]: the padding row at padding positions, zero elsewhere
        INDArray padPart = padCol.reshape(padCol.length(), 1).mmul(w.value().getRow(paddingIdx).reshape(1, embeddingDim))
                .reshape('c', out.shape());
        return Ops.add(Ops.mul(out, Tensor.constant(keep)), Tensor.constant(padPart));
    }

    @Override
    protected String describe() {
        return "Embedding(" + numEmbeddings + ", " + embeddingDim + (paddingIdx >= 0 ? ", padding_idx=" + paddingIdx : "") + ")";
    }
}
