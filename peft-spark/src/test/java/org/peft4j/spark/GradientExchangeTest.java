package org.peft4j.spark;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The wire format: exact float round trip, missing gradients as zeros, sums in task order. */
class GradientExchangeTest {

    @Test
    void valuesSurviveTheTextMessageBitForBit() {
        INDArray a = Nd4j.createFromArray(new float[][]{{1.5f, -0.0f, Float.MIN_VALUE}, {3e-38f, 1e30f, -7.25f}});
        INDArray b = Nd4j.createFromArray(new float[]{0.1f, 0.2f});
        List<long[]> shapes = List.of(a.shape(), b.shape(), new long[]{3});
        float[] flat = GradientExchange.flatten(Arrays.asList(a, b, null), shapes);
        assertEquals(11, flat.length);
        assertEquals(0f, flat[8]);     // a parameter without a gradient contributes zeros
        String msg = GradientExchange.encode("0.25,abc", flat);
        assertEquals("0.25,abc", GradientExchange.header(msg));
        float[] back = GradientExchange.values(msg);
        for (int i = 0; i < flat.length; i++) {
            assertEquals(Float.floatToRawIntBits(flat[i]), Float.floatToRawIntBits(back[i]), "value " + i);
        }
        // Base64: 4 bytes per float → 16/3 characters, plus the header
        assertEquals(9 + (11 * 4 + 2) / 3 * 4, msg.length());
        INDArray[] parts = GradientExchange.unflatten(back, shapes);
        assertEquals(a, parts[0]);
        assertEquals(b, parts[1]);
        assertArrayEquals(new long[]{3}, parts[2].shape());
    }

    @Test
    void sumIsTakenInTaskOrder() {
        // fp32 addition is not associative: (1e8 + 1) + -1e8 = 0, 1e8 + (1 + -1e8) = 0 too, but (1 + 1e8) - 1e8 differs from 1
        String[] msgs = {GradientExchange.encode("t0", new float[]{1e8f, 1f}), GradientExchange.encode("t1", new float[]{1f, 2f}),
                GradientExchange.encode("t2", new float[]{-1e8f, 3f})};
        float[] s = GradientExchange.sum(msgs, 2);
        assertEquals(((1e8f + 1f) + -1e8f), s[0]);
        assertEquals(6f, s[1]);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> GradientExchange.sum(msgs, 3));
        assertTrue(e.getMessage().contains("task 0 sent 2 values, expected 3"), e.getMessage());
    }

    @Test
    void headerMayNotContainTheSeparator() {
        assertThrows(IllegalArgumentException.class, () -> GradientExchange.encode("a|b", new float[1]));
    }
}
