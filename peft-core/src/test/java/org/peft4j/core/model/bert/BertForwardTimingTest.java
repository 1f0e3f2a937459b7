package org.peft4j.core.model.bert;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.model.ModelZoo;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** Measures (logs, never asserts) MiniLM inference time for a batch of 32 x 128 tokens. */
class BertForwardTimingTest {
    @Test
    void miniLmBatch32x128() {
        try (ModelZoo.Pretrained p = ModelZoo.miniLmL6(); NoGrad ignored = NoGrad.enter()) {
            Rng r = new Rng(1);
            long[] ids = new long[32 * 128];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = i % 128 == 0 ? 101 : i % 128 == 127 ? 102 : 1000 + r.nextInt(29000);
            }
            INDArray input = Nd4j.createFromArray(ids).reshape(32, 128);
            INDArray mask = Nd4j.ones(DataType.INT64, 32, 128);
            assertArrayEquals(new long[]{32, 128, 384}, p.model().forward(input, mask, null).lastHiddenState().shape()); // warm-up
            int reps = 3;
            long best = Long.MAX_VALUE;
            long total = 0;
            for (int i = 0; i < reps; i++) {
                long t0 = System.nanoTime();
                p.model().forward(input, mask, null);
                long dt = System.nanoTime() - t0;
                best = Math.min(best, dt);
                total += dt;
            }
            System.out.printf("MiniLM forward, batch 32 x 128 under NoGrad: best %.0f ms, mean %.0f ms (%.0f tokens/s best), threads %d%n",
                    best / 1e6, total / 1e6 / reps, 32 * 128 / (best / 1e9), Nd4j.getEnvironment().maxThreads());
        }
    }
}
