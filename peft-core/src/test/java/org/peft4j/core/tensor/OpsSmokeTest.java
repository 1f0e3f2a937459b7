package org.peft4j.core.tensor;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Quick end-to-end gradient check of a small network built from many ops at once. */
class OpsSmokeTest {
    @Test
    void smallNetworkGradients() {
        Rng rng = new Rng(7);
        INDArray x = GradCheck.random(rng, 2, 3, 4);
        INDArray w = GradCheck.random(rng, 5, 4);
        INDArray b = GradCheck.random(rng, 5);
        INDArray gamma = GradCheck.random(rng, 5);
        INDArray beta = GradCheck.random(rng, 5);
        INDArray targets = Nd4j.createFromArray(new int[][]{{0, 4, -100}, {2, 1, 3}});
        GradCheck.of("smoke", in -> {
            Tensor h = Ops.linear(in[0], in[1], in[2]);
            h = Ops.layerNorm(h, in[3], in[4], 1e-5);
            h = Ops.gelu(h);
            Tensor att = Ops.softmax(Ops.matmul(h, h, false, true));
            h = Ops.add(Ops.matmul(att, h), Ops.tanh(h));
            return Ops.crossEntropy(h, targets, Ops.Reduction.MEAN);
        }, x, w, b, gamma, beta).check();
    }

    @Test
    void remainingOpsGradients() {
        Rng rng = new Rng(8);
        INDArray x = GradCheck.random(rng, 2, 3, 4);
        INDArray y = GradCheck.random(rng, 3, 1);
        INDArray emb = GradCheck.random(rng, 6, 4);
        INDArray gamma = GradCheck.random(rng, 4);
        INDArray ids = Nd4j.createFromArray(new long[][]{{1, 5, 1}, {0, 2, 1}});
        INDArray cos = GradCheck.random(rng, 3, 4);
        INDArray sin = GradCheck.random(rng, 3, 4);
        INDArray mask = Nd4j.createFromArray(new double[]{0, 1, 0, 0}).reshape(1, 1, 4);
        GradCheck.of("smoke2", in -> {
            Tensor e = Ops.embedding(in[2], ids);                                   // [2,3,4]
            Tensor h = Ops.add(in[0], e);
            h = Ops.rmsNorm(h, in[3], 1e-6);
            h = Ops.rotary(h, cos, sin);
            h = Ops.mul(h, in[1]);                                                  // [2,3,4]*[3,1]
            h = Ops.maskedFill(h, mask, -3.0);
            h = Ops.add(Ops.silu(h), Ops.geluTanh(Ops.sigmoid(h)));
            h = Ops.sub(Ops.relu(h), Ops.div(h, Ops.add(Ops.exp(h), 1.0)));
            h = Ops.concat(2, Ops.slice(h, 2, 0, 2), Ops.indexSelect(h, 2, Nd4j.createFromArray(3, 3, 0)));
            h = Ops.reshape(Ops.permute(h, 1, 0, 2), 3, 10);
            h = Ops.dropout(h, 0.3, true, new Rng(99));
            Tensor p = Ops.sqrt(Ops.add(Ops.pow(h, 2.0), 1.0));
            Tensor q = Ops.log(Ops.add(Ops.mul(p, 0.5), 1.0));
            Tensor kl = Ops.klDivergence(Ops.transpose(q, 0, 1), Ops.neg(Ops.transpose(p, 0, 1)), 2.0);
            Tensor cs = Ops.sum(Ops.cosineSimilarity(p, q, 1, 1e-8));
            Tensor m = Ops.mse(Ops.mean(p, true, 0), Ops.sum(q, true, 0), Ops.Reduction.SUM);
            return Ops.add(Ops.add(kl, cs), Ops.add(m, Ops.mean(Ops.logSoftmax(q))));
        }, x, y, emb, gamma).check();
    }
}
