package org.peft4j.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KVCacheTest {

    @Test
    void appendGrowsAndReturnsEverythingSoFar() {
        KVCache cache = new KVCache();
        assertEquals(0, cache.length());
        assertNull(cache.keys());
        Rng rng = new Rng(1);
        INDArray allK = GradCheck.random(rng, 2, 3, 40, 4);
        INDArray allV = GradCheck.random(rng, 2, 3, 40, 5);
        long pos = 0;
        try (NoGrad ignored = NoGrad.enter()) {
            for (long step : new long[]{7, 1, 1, 12, 19}) {   // crosses the initial capacity of 16 twice
                Tensor[] kv = cache.append(Tensor.constant(range(allK, pos, pos + step)), Tensor.constant(range(allV, pos, pos + step)));
                pos += step;
                assertEquals(pos, cache.length());
                assertTrue(cache.capacity() >= pos);
                assertEquals(0.0, NnTestSupport.maxAbsDiff(kv[0].value(), range(allK, 0, pos)), 0.0);
                assertEquals(0.0, NnTestSupport.maxAbsDiff(kv[1].value(), range(allV, 0, pos)), 0.0);
            }
        }
        assertEquals(0.0, NnTestSupport.maxAbsDiff(cache.keys(), allK), 0.0);
        cache.reset();
        assertEquals(0, cache.length());
        assertNull(cache.values());
    }

    @Test
    void mismatchedAppendNamesShapes() {
        KVCache cache = new KVCache();
        Rng rng = new Rng(2);
        cache.append(Tensor.constant(GradCheck.random(rng, 1, 2, 3, 4)), Tensor.constant(GradCheck.random(rng, 1, 2, 3, 4)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> cache.append(
                Tensor.constant(GradCheck.random(rng, 1, 3, 1, 4)), Tensor.constant(GradCheck.random(rng, 1, 3, 1, 4))));
        assertTrue(e.getMessage().contains("[1, 3, 1, 4]") && e.getMessage().contains("[1, 2, 3, 4]"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> cache.append(
                Tensor.constant(GradCheck.random(rng, 1, 2, 2, 4)), Tensor.constant(GradCheck.random(rng, 1, 2, 1, 4))));
    }

    @Test
    void withGradientsTheNewStepStillGetsGradients() {
        KVCache cache = new KVCache();
        Rng rng = new Rng(3);
        cache.append(Tensor.constant(GradCheck.random(rng, 1, 1, 2, 2)), Tensor.constant(GradCheck.random(rng, 1, 1, 2, 2)));
        Tensor k = Tensor.variable(GradCheck.random(rng, 1, 1, 1, 2));
        Tensor v = Tensor.variable(GradCheck.random(rng, 1, 1, 1, 2));
        Tensor[] kv = cache.append(k, v);
        assertEquals(3, kv[0].size(2));
        kv[0].backward(org.nd4j.linalg.factory.Nd4j.ones(kv[0].value().dataType(), kv[0].shape()));
        assertNotNull(k.grad());
        assertEquals(2.0, k.grad().sumNumber().doubleValue(), 0.0);
    }

    private static INDArray range(INDArray a, long from, long to) {
        return a.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(from, to), NDArrayIndex.all());
    }
}
