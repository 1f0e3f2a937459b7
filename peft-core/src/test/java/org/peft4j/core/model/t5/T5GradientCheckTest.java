package org.peft4j.core.model.t5;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.AttentionMask;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.ScaledDotProductAttention;
import org.peft4j.core.tensor.ScaledDotProductAttention.Heads;
import org.peft4j.core.tensor.Tensor;

/**
 * Numerical gradient checks (DOUBLE, central differences) of the one new differentiable piece
 * T5 adds: attention with an additive score bias looked up from the relative-position table
 * ({@code softmax(q·kᵀ + table[bucket] , masked)·v}, no scaling), for q, k, v and the table, with a
 * causal mask over a prefix + padding, and bidirectionally.
 */
class T5GradientCheckTest {
    private final Rng rng = new Rng(20261204L);

    @Test
    void biasedAttentionGradientsMatchFiniteDifferences() {
        int b = 2, h = 3, t = 4, d = 5, buckets = 6, prefix = 2;
        int s = prefix + t;
        for (boolean decoder : new boolean[]{true, false}) {
            INDArray ids = T5Attention.bucketIds(t, s, prefix, !decoder, buckets, 12);
            INDArray pad = Nd4j.createFromArray(new long[][]{{1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 0}});
            AttentionMask mask = (decoder ? AttentionMask.causal(0) : AttentionMask.bidirectional()).withPrefix(prefix)
                    .withKeyPadding(decoder ? pad.get(org.nd4j.linalg.indexing.NDArrayIndex.all(),
                            org.nd4j.linalg.indexing.NDArrayIndex.interval(prefix, s)) : pad);
            GradCheck.of("t5 biased attention decoder=" + decoder, in -> {
                Tensor bias = Ops.reshape(Ops.permute(Ops.embedding(in[3], ids), 2, 0, 1), 1, h, t, s);
                return ScaledDotProductAttention.attendWithProbabilities(Heads.split(in[0]), Heads.split(in[1]),
                        Heads.split(in[2]), bias, mask, 1.0, 0.0, null, false, true).context();
            }, GradCheck.random(rng, b, h, t, d), GradCheck.random(rng, b, h, s, d), GradCheck.random(rng, b, h, s, d),
                    GradCheck.random(rng, buckets, h)).check();
        }
    }
}
