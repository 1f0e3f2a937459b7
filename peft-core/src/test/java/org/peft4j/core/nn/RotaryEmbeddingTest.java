package org.peft4j.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RotaryEmbeddingTest {

    @Test
    void tablesFollowTheFormula() {
        RotaryEmbedding rope = new RotaryEmbedding(8, 10000.0);
        float[] inv = rope.inverseFrequencies();
        for (int i = 0; i < 4; i++) {
            assertEquals(Math.pow(10000.0, -2.0 * i / 8), inv[i], 1e-7 * Math.max(1, inv[i]));
        }
        INDArray[] cs = rope.cosSin(3, 2, DataType.DOUBLE);
        assertEquals(2, cs[0].size(0));
        assertEquals(8, cs[0].size(1));
        for (int p = 0; p < 2; p++) {
            for (int i = 0; i < 4; i++) {
                double angle = (3 + p) * Math.pow(10000.0, -2.0 * i / 8);
                assertEquals(Math.cos(angle), cs[0].getDouble(p, i), 1e-6);
                assertEquals(cs[0].getDouble(p, i), cs[0].getDouble(p, i + 4), 0.0, "emb = cat(freqs, freqs)");
                assertEquals(Math.sin(angle), cs[1].getDouble(p, i), 1e-6);
                assertEquals(cs[1].getDouble(p, i), cs[1].getDouble(p, i + 4), 0.0);
            }
        }
    }

    /**
     * Hugging Face computes inv_freq and the angles in float32; at position 4000 with theta 5e5
     * that differs from double arithmetic by up to 1.2e-4 in cos. Expected values: scalar numpy
     * float32 evaluation of HF's formula ({@code 1/(base ** (arange(0,d,2).float()/d))} with a
     * correctly rounded pow, {@code pos·inv_freq}, cos/sin). PyTorch's vectorised pow may differ
     * from a correctly rounded one by 1 ulp for some frequencies.
     */
    @Test
    void matchesHuggingFaceFloat32ArithmeticAtLongPositions() {
        RotaryEmbedding rope = new RotaryEmbedding(64, 500000.0);
        float[] inv = rope.inverseFrequencies();
        assertEquals(0.663601279258728, inv[1], 0.0);
        assertEquals(0.12868738174438477, inv[5], 0.0);
        INDArray[] cs = rope.cosSin(4000, 1, DataType.FLOAT);
        double[][] expected = {   // index, cos, sin
                {0, -0.7299469709396362, -0.6835038065910339},
                {1, -0.9711562991142273, 0.23844368755817413},
                {5, 0.8908045887947083, -0.45438656210899353},
                {17, -0.8183266520500183, -0.57475346326828},
                {31, 0.9999273419380188, 0.012055139988660812}};
        for (double[] e : expected) {
            int i = (int) e[0];
            assertEquals(e[1], cs[0].getDouble(0, i), 2e-7, "cos " + i);
            assertEquals(e[2], cs[1].getDouble(0, i), 2e-7, "sin " + i);
        }
    }

    @Test
    void growingTheTableKeepsEarlierRowsAndLinearScalingDividesPositions() {
        RotaryEmbedding rope = new RotaryEmbedding(4, 100.0);
        INDArray early = rope.cosSin(5, 3, DataType.FLOAT)[0].dup();
        INDArray late = rope.cosSin(200, 3, DataType.FLOAT)[0];   // forces growth
        INDArray earlyAgain = rope.cosSin(5, 3, DataType.FLOAT)[0];
        assertEquals(0.0, NnTestSupport.maxAbsDiff(early, earlyAgain), 0.0);
        assertEquals(Math.cos(201 * Math.pow(100.0, -0.5)), late.getDouble(1, 1), 1e-4);

        RotaryEmbedding scaled = new RotaryEmbedding(4, 100.0, 4.0);
        INDArray c = scaled.cosSin(8, 1, DataType.DOUBLE)[0];
        assertEquals(Math.cos(2.0 * Math.pow(100.0, -0.5)), c.getDouble(0, 1), 1e-6);
        assertEquals(Math.cos(2.0), c.getDouble(0, 0), 1e-6);
    }

    @Test
    void rotationIsRelativeAndDifferentiable() {
        RotaryEmbedding rope = new RotaryEmbedding(6, 10000.0);
        Rng rng = new Rng(1);
        INDArray q = GradCheck.random(rng, 1, 1, 1, 6);
        INDArray k = GradCheck.random(rng, 1, 1, 1, 6);
        double d1 = dot(rope.apply(Tensor.constant(q), 5).value(), rope.apply(Tensor.constant(k), 2).value());
        double d2 = dot(rope.apply(Tensor.constant(q), 9).value(), rope.apply(Tensor.constant(k), 6).value());
        assertEquals(d1, d2, 1e-6, "q·k depends only on the position difference");
        double n0 = q.norm2Number().doubleValue();
        assertEquals(n0, rope.apply(Tensor.constant(q), 7).value().norm2Number().doubleValue(), 1e-6, "rotation keeps the norm");
        GradCheck.of("rotary apply", in -> rope.apply(in[0], 3), GradCheck.random(rng, 2, 2, 3, 6)).check();
        assertThrows(IllegalArgumentException.class, () -> rope.apply(Tensor.constant(GradCheck.random(rng, 1, 2, 4)), 0));
        assertThrows(IllegalArgumentException.class, () -> new RotaryEmbedding(5, 10000.0));
    }

    private static double dot(INDArray a, INDArray b) {
        return a.castTo(DataType.DOUBLE).mul(b.castTo(DataType.DOUBLE)).sumNumber().doubleValue();
    }
}
