package org.peft4j.core.model.decoder;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.model.gpt2.Gpt2Config;
import org.peft4j.core.model.gpt2.Gpt2LMHeadModel;
import org.peft4j.core.model.llama.LlamaConfig;
import org.peft4j.core.model.llama.LlamaForCausalLM;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Central-difference gradient checks of whole decoder models in double precision (a
 * complement to the PyTorch comparison): the loss is a fixed weighted sum of the logits of a
 * padded batch; a few entries of several weights are perturbed by ±1e-6.
 */
class DecoderGradientCheckTest {
    static final double H = 1e-6;
    static final double TOL = 1e-6;

    static void toDouble(DecoderLM m) {
        for (Parameter p : m.parameters()) {
            p.setValue(p.value().castTo(DataType.DOUBLE));
        }
    }

    static void check(DecoderLM m, INDArray ids, INDArray mask, List<String> names) {
        m.eval();
        toDouble(m);
        Rng rng = new Rng(9);
        long[] shape = {ids.size(0), ids.size(1), m.vocabSize()};
        double[] w = new double[(int) (shape[0] * shape[1] * shape[2])];
        for (int i = 0; i < w.length; i++) {
            w[i] = rng.nextGaussian();
        }
        INDArray weights = Nd4j.create(w, shape, DataType.DOUBLE);
        for (int b = 0; b < shape[0]; b++) {
            for (int t = 0; t < shape[1]; t++) {
                if (mask.getLong(b, t) == 0) {
                    weights.get(org.nd4j.linalg.indexing.NDArrayIndex.point(b), org.nd4j.linalg.indexing.NDArrayIndex.point(t)).assign(0);
                }
            }
        }
        Tensor loss = Ops.sum(Ops.mul(m.forward(ids, mask), Tensor.constant(weights)));
        loss.backward();
        Map<String, Parameter> params = m.namedParameters();
        for (String name : names) {
            Parameter p = params.get(name);
            INDArray grad = p.grad().dup();
            INDArray v = p.value();
            for (int k = 0; k < 3; k++) {
                long idx = (long) (rng.nextDouble() * v.length());
                double orig = v.getDouble(idx);
                double plus;
                double minus;
                try (NoGrad ignored = NoGrad.enter()) {
                    v.putScalar(idx, orig + H);
                    plus = Ops.sum(Ops.mul(m.forward(ids, mask), Tensor.constant(weights))).value().getDouble(0);
                    v.putScalar(idx, orig - H);
                    minus = Ops.sum(Ops.mul(m.forward(ids, mask), Tensor.constant(weights))).value().getDouble(0);
                    v.putScalar(idx, orig);
                }
                double numeric = (plus - minus) / (2 * H);
                double analytic = grad.getDouble(idx);
                assertEquals(numeric, analytic, TOL * Math.max(1, Math.abs(numeric)), name + "[" + idx + "]");
            }
        }
    }

    @Test
    void gpt2GradientsMatchFiniteDifferences() {
        Gpt2Config c = new Gpt2Config(20, 16, 8, 2, 2, 16, "gelu_new", 1e-5, true, true, 0, 0, 0, 0.3, null, List.of());
        INDArray ids = Nd4j.createFromArray(new long[][]{{1, 5, 7, 2, 9}, {3, 4, 19, 0, 0}});
        INDArray mask = Nd4j.createFromArray(new long[][]{{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}});
        check(Gpt2LMHeadModel.random(c, 1), ids, mask, List.of("transformer.wte.weight", "transformer.wpe.weight",
                "transformer.h.0.attn.c_attn.weight", "transformer.h.1.mlp.c_fc.bias", "transformer.h.1.ln_2.weight"));
    }

    @Test
    void llamaGradientsMatchFiniteDifferences() {
        LlamaConfig c = new LlamaConfig("qwen2", 20, 8, 12, 2, 4, 2, 4, 1e-6, 10000.0, 32, false, false, false,
                null, 0.0, 0.3, null, List.of());
        // left padding: the pad queries at positions 0 and 1 see no real key at all
        INDArray ids = Nd4j.createFromArray(new long[][]{{0, 0, 7, 2, 9}, {3, 4, 19, 11, 5}});
        INDArray mask = Nd4j.createFromArray(new long[][]{{0, 0, 1, 1, 1}, {1, 1, 1, 1, 1}});
        check(LlamaForCausalLM.random(c, 2), ids, mask, List.of("model.embed_tokens.weight", "lm_head.weight",
                "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.q_proj.bias",
                "model.layers.1.mlp.gate_proj.weight", "model.layers.1.input_layernorm.weight"));
    }
}
