package org.peft4j.lora;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

final class TestUtil {
    private TestUtil() {
    }

    static double maxAbsDiff(INDArray a, INDArray b) {
        assertArrayEquals(a.shape(), b.shape(), "shapes differ: " + Arrays.toString(a.shape()) + " vs " + Arrays.toString(b.shape()));
        return a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    }

    static void assertClose(INDArray expected, INDArray actual, double tol, String what) {
        double d = maxAbsDiff(expected, actual);
        assertTrue(d <= tol, what + ": max |diff| " + d + " > " + tol);
    }

    /**
     * Every element equal (a difference of exactly 0; -0.0 equals 0.0). Not {@code INDArray.equals},
     * which tolerates differences up to {@code Nd4j.EPS_THRESHOLD} (1e-5).
     */
    static void assertExactlyEqual(INDArray expected, INDArray actual, String what) {
        assertArrayEquals(expected.shape(), actual.shape(), what + " shape");
        double d = maxAbsDiff(expected, actual);
        assertTrue(d == 0.0, what + ": not exactly equal, max |diff| " + d);
    }
}
