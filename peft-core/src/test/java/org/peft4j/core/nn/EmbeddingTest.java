package org.peft4j.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EmbeddingTest {

    @Test
    void lookupAndGradientCheck() {
        Embedding emb = NnTestSupport.toDouble(new Embedding(7, 4, new Rng(1)));
        INDArray ids = Nd4j.createFromArray(new long[][]{{1, 3, 3}, {6, 0, 1}});
        Tensor out = emb.forward(ids);
        assertEquals(java.util.List.of(2L, 3L, 4L), java.util.Arrays.stream(out.shape()).boxed().toList());
        for (int d = 0; d < 4; d++) {
            assertEquals(emb.weight().value().getDouble(6, d), out.value().getDouble(1, 0, d), 0.0);
        }
        // repeated ids (3 twice, 1 twice) accumulate gradient
        NnTestSupport.gradCheck("embedding", emb, t -> emb.forward(ids)).maxElements(28).run();
    }

    @Test
    void paddingRowKeepsValueButGetsNoGradientFromLookups() {
        Embedding emb = NnTestSupport.toDouble(new Embedding(5, 3, 0, new Rng(2)));
        assertEquals(0.0, emb.weight().value().getRow(0).amaxNumber().doubleValue(), 0.0, "padding row zero at init");
        emb.weight().value().getRow(0).assign(Nd4j.createFromArray(0.5, -1.0, 2.0));   // as loaded from a checkpoint
        INDArray ids = Nd4j.createFromArray(new int[][]{{0, 2, 0, 4}});
        Tensor out = emb.forward(ids);
        assertEquals(-1.0, out.value().getDouble(0, 2, 1), 0.0, "padding positions still read the padding row");
        assertEquals(emb.weight().value().getDouble(2, 1), out.value().getDouble(0, 1, 1), 0.0);
        out.backward(Nd4j.ones(DataType.DOUBLE, out.shape()));
        INDArray g = emb.weight().grad();
        assertEquals(0.0, g.getRow(0).amaxNumber().doubleValue(), 0.0, "no gradient into the padding row");
        assertEquals(1.0, g.getDouble(2, 0), 0.0);
        assertEquals(0.0, g.getRow(1).amaxNumber().doubleValue(), 0.0);
        NnTestSupport.gradCheck("embedding with padding idx", emb, t -> emb.forward(Nd4j.createFromArray(new int[]{1, 2, 1, 4})))
                .maxElements(15).run();
    }

    @Test
    void initIsStandardNormalAndSeeded() {
        Embedding a = new Embedding(200, 50, new Rng(3));
        Embedding b = new Embedding(200, 50, new Rng(3));
        INDArray w = a.weight().value();
        assertEquals(0.0, w.meanNumber().doubleValue(), 0.05);
        assertEquals(1.0, w.stdNumber().doubleValue(), 0.05);
        assertEquals(0.0, NnTestSupport.maxAbsDiff(w, b.weight().value()), 0.0);
    }

    @Test
    void outOfRangeIdsNameTheRange() {
        Embedding emb = new Embedding(5, 3, new Rng(4));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> emb.forward(Nd4j.createFromArray(new long[]{1, 5})));
        assertTrue(e.getMessage().contains("[0, 5)") && e.getMessage().contains("5]"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> emb.forward(Nd4j.createFromArray(-1L)));
        assertThrows(IllegalArgumentException.class, () -> emb.forward(Nd4j.createFromArray(1.0f)));
    }
}
