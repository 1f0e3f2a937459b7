package org.peft4j.benchmarks;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.model.ModelZoo;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;

/**
 * MiniLM-L6 inference time for one batch of 32 × 128 tokens under {@link NoGrad} (the bundled
 * model, random ids between [CLS] and [SEP]): one warm-up pass, then the best and mean of
 * {@code reps} passes (default 3) and the tokens/s of the best. Was a unit test that only printed.
 *
 * <pre>java -cp … org.peft4j.benchmarks.BertForwardTiming [reps]</pre>
 */
public final class BertForwardTiming {
    private BertForwardTiming() {
    }

    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 3;
        if (reps < 1) {
            throw new IllegalArgumentException("reps must be >= 1, got " + reps);
        }
        int batch = 32;
        int seq = 128;
        try (ModelZoo.Pretrained p = ModelZoo.miniLmL6(); NoGrad ignored = NoGrad.enter()) {
            Rng r = new Rng(1);
            long[] ids = new long[batch * seq];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = i % seq == 0 ? 101 : i % seq == seq - 1 ? 102 : 1000 + r.nextInt(29000);
            }
            INDArray input = Nd4j.createFromArray(ids).reshape(batch, seq);
            INDArray mask = Nd4j.ones(DataType.INT64, batch, seq);
            p.model().forward(input, mask, null);   // warm-up
            long best = Long.MAX_VALUE;
            long total = 0;
            for (int i = 0; i < reps; i++) {
                long t0 = System.nanoTime();
                p.model().forward(input, mask, null);
                long dt = System.nanoTime() - t0;
                best = Math.min(best, dt);
                total += dt;
            }
            System.out.printf("MiniLM forward, batch %d x %d under NoGrad: best %.0f ms, mean %.0f ms (%.0f tokens/s best), threads %d%n",
                    batch, seq, best / 1e6, total / 1e6 / reps, batch * seq / (best / 1e9), Nd4j.getEnvironment().maxThreads());
        }
    }
}
