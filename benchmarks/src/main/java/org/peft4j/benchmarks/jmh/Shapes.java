package org.peft4j.benchmarks.jmh;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.Rng;

/** MiniLM-sized operands shared by the JMH benchmarks: batch 16 × 128 tokens, hidden 384, 12 heads, FFN 1536. */
final class Shapes {
    static final int B = 16;
    static final int T = 128;
    static final int HIDDEN = 384;
    static final int HEADS = 12;
    static final int HEAD_DIM = 32;
    static final int FFN = 1536;

    private Shapes() {
    }

    /** N(0, scale²) FLOAT values from a fixed seed. */
    static INDArray randn(long seed, double scale, long... shape) {
        Rng r = new Rng(seed);
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextGaussian() * scale);
        }
        return Nd4j.create(v, shape, 'c').castTo(DataType.FLOAT);
    }
}
