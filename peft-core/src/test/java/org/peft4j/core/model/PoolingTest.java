package org.peft4j.core.model;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.Tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class PoolingTest {

    private static INDArray hidden() {
        // [2, 3, 2]
        return Nd4j.createFromArray(new double[][][]{
                {{1, 2}, {3, 4}, {100, 100}},
                {{-1, 5}, {7, 7}, {9, 9}}});
    }

    @Test
    void meanIgnoresPadding() {
        INDArray mask = Nd4j.createFromArray(new long[][]{{1, 1, 0}, {1, 0, 0}});
        INDArray out = Pooling.mean(Tensor.constant(hidden()), mask).value();
        assertArrayEquals(new long[]{2, 2}, out.shape());
        assertEquals(2.0, out.getDouble(0, 0), 1e-12);   // (1 + 3) / 2
        assertEquals(3.0, out.getDouble(0, 1), 1e-12);   // (2 + 4) / 2
        assertEquals(-1.0, out.getDouble(1, 0), 1e-12);
        assertEquals(5.0, out.getDouble(1, 1), 1e-12);
        INDArray none = Pooling.mean(Tensor.constant(hidden()), Nd4j.zeros(DataType.INT64, 2, 3)).value();
        assertEquals(0.0, none.sumNumber().doubleValue(), 0);
        assertThrows(IllegalArgumentException.class, () -> Pooling.mean(Tensor.constant(hidden()), Nd4j.ones(2, 4)));
    }

    @Test
    void firstAndNormalize() {
        INDArray f = Pooling.first(Tensor.constant(hidden())).value();
        assertEquals(1.0, f.getDouble(0, 0), 0);
        assertEquals(5.0, f.getDouble(1, 1), 0);
        INDArray n = Pooling.l2Normalize(Tensor.constant(Nd4j.createFromArray(new double[][]{{3, 4}, {0, 0}}))).value();
        assertEquals(0.6, n.getDouble(0, 0), 1e-12);
        assertEquals(0.8, n.getDouble(0, 1), 1e-12);
        assertEquals(0.0, n.getDouble(1, 0), 0);
    }

    @Test
    void gradients() {
        Nd4j.getRandom().setSeed(7);
        INDArray h = Nd4j.rand(DataType.DOUBLE, 2, 4, 3).subi(0.5);
        INDArray mask = Nd4j.createFromArray(new long[][]{{1, 1, 1, 0}, {1, 1, 0, 0}});
        GradCheck.of("meanPooling", in -> Pooling.mean(in[0], mask), h).check();
        INDArray x = Nd4j.rand(DataType.DOUBLE, 3, 5).subi(0.5);
        GradCheck.of("l2Normalize", in -> Pooling.l2Normalize(in[0]), x).check();
        GradCheck.of("meanThenNormalize", in -> Pooling.l2Normalize(Pooling.mean(in[0], mask)), h).check();
    }
}
