package org.peft4j.core.train;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PaddingCollatorTest {

    private static long[][] longs(INDArray a) {
        return a.toLongMatrix();
    }

    @Test
    void padsToLongestWithMaskAndClassLabels() {
        Batch b = PaddingCollator.<Example>dynamic(0).collate(List.of(
                new Example(new int[]{5, 6, 7}, 2),
                new Example(new int[]{8}, 0),
                new Example(new int[]{9, 10}, 1)));
        assertArrayEquals(new long[]{3, 3}, b.inputIds().shape());
        assertEquals(DataType.INT64, b.inputIds().dataType());
        assertEquals(DataType.FLOAT, b.attentionMask().dataType());
        assertArrayEquals(new long[][]{{5, 6, 7}, {8, 0, 0}, {9, 10, 0}}, longs(b.inputIds()));
        assertArrayEquals(new float[][]{{1, 1, 1}, {1, 0, 0}, {1, 1, 0}}, b.attentionMask().toFloatMatrix());
        assertArrayEquals(new long[]{2, 0, 1}, b.labels().toLongVector());
        assertNull(b.tokenTypeIds());
        assertEquals(6, b.numTokens());
        assertEquals(3, b.size());
        assertEquals(3, b.seqLength());
    }

    @Test
    void tokenLabelsArePaddedWithIgnoreIndex() {
        Batch b = PaddingCollator.<TokenExample>dynamic(1).collate(List.of(
                new TokenExample(new int[]{4, 5}, new int[]{0, 0}, new int[]{1, 2}),
                new TokenExample(new int[]{6, 7, 8, 9}, new int[]{0, 0, 1, 1}, new int[]{3, -100, 4, 5})));
        assertArrayEquals(new long[][]{{4, 5, 1, 1}, {6, 7, 8, 9}}, longs(b.inputIds()));
        assertArrayEquals(new long[][]{{1, 2, -100, -100}, {3, -100, 4, 5}}, longs(b.labels()));
        assertArrayEquals(new long[][]{{0, 0, 0, 0}, {0, 0, 1, 1}}, longs(b.tokenTypeIds()));
        assertArrayEquals(new float[][]{{1, 1, 0, 0}, {1, 1, 1, 1}}, b.attentionMask().toFloatMatrix());
    }

    @Test
    void fixedLengthPadsAndTruncates() {
        Batch b = PaddingCollator.<Example>fixed(0, 5, false).collate(List.of(new Example(new int[]{3, 4}, 1)));
        assertArrayEquals(new long[][]{{3, 4, 0, 0, 0}}, longs(b.inputIds()));
        Batch t = PaddingCollator.<Example>fixed(0, 2, true).collate(List.of(new Example(new int[]{3, 4, 5}, 1)));
        assertArrayEquals(new long[][]{{3, 4}}, longs(t.inputIds()));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> PaddingCollator.<Example>fixed(0, 2, false).collate(List.of(new Example(new int[]{1}, 0), new Example(new int[]{3, 4, 5}, 1))));
        assertTrue(e.getMessage().contains("example 1"), e.getMessage());
        Batch capped = PaddingCollator.<Example>dynamic(0, 4, true).collate(List.of(new Example(new int[]{1, 2}, 0)));
        assertArrayEquals(new long[]{1, 2}, capped.inputIds().shape(), "a cap does not pad up to it");
    }

    @Test
    void leftPadding() {
        Batch b = PaddingCollator.<TokenExample>dynamic(0).withSide(PaddingCollator.Side.LEFT).collate(List.of(
                TokenExample.causalLm(new int[]{7}), TokenExample.causalLm(new int[]{8, 9})));
        assertArrayEquals(new long[][]{{0, 7}, {8, 9}}, longs(b.inputIds()));
        assertArrayEquals(new float[][]{{0, 1}, {1, 1}}, b.attentionMask().toFloatMatrix());
        assertArrayEquals(new long[][]{{-100, 7}, {8, 9}}, longs(b.labels()));
    }

    @Test
    void rejectsBadBatches() {
        assertThrows(IllegalArgumentException.class, () -> PaddingCollator.<Example>dynamic(0).collate(List.of()));
        assertThrows(IllegalArgumentException.class, () -> PaddingCollator.<TokenizedExample>dynamic(0).collate(List.of(
                new Example(new int[]{1}, 0), TokenExample.causalLm(new int[]{1}))));
        assertThrows(IllegalArgumentException.class, () -> PaddingCollator.<Example>dynamic(0).collate(List.of(
                new Example(new int[]{1}, new int[]{0}, 0), new Example(new int[]{1}, 0))));
        assertThrows(IllegalArgumentException.class, () -> new TokenExample(new int[]{1, 2}, new int[]{1}));
        assertThrows(IllegalArgumentException.class, () -> new Example(new int[0], 0));
    }
}
