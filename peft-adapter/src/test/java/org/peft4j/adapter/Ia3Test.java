package org.peft4j.adapter;

import org.peft4j.core.testing.RepoFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.LinearLayer;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.MixedBatch;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.quant.QuantConfig;
import org.peft4j.quant.QuantizedLinear;
import org.peft4j.quant.Quantizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** IA3 layer math, gradients, defaults, folder layout, mixed batches, a 4-bit base and bad input. */
class Ia3Test {

    private static INDArray rnd(long seed, long... shape) {
        return GradCheck.random(new Rng(seed), shape).muli(0.5);
    }

    /**
     * Central differences (h = 1e-6, |diff| ≤ 1e-6 + 1e-4·|g|) through an IA3-wrapped DOUBLE linear
     * layer x [2, 3, 5] → [2, 3, 4]: with respect to the input (GradCheck) and to the vector l,
     * feed-forward ([1, 5]) and output-scaling ([4, 1], bias included), [out, in] and Conv1D layouts;
     * the frozen base weight and bias get no gradient.
     */
    @ParameterizedTest
    @CsvSource({"true,false", "false,false", "true,true", "false,true"})
    void gradientsThroughIa3Layer(boolean feedforward, boolean fifo) {
        INDArray w = rnd(2, 4, 5);
        INDArray b = rnd(3, 4);
        Linear lin = new Linear(fifo ? w.transpose().dup() : w, b, fifo);
        lin.freeze();
        Ia3Layer layer = new Ia3Layer(lin, feedforward);
        layer.addAdapter("default", false, 11);
        Parameter l = layer.ia3("default");
        assertEquals(DataType.DOUBLE, l.value().dataType());
        assertEquals(List.of(feedforward ? 1L : 4L, feedforward ? 5L : 1L), List.of(l.value().size(0), l.value().size(1)));
        INDArray x = rnd(1, 2, 3, 5);
        GradCheck.Fn fn = in -> layer.forward(in[0]);
        double worst = GradCheck.of("ia3 x ff=" + feedforward, fn, x).check();
        assertTrue(worst <= 1.0);
        // with respect to l (a module parameter): analytic from backward, numeric by perturbing it in place
        l.zeroGrad();
        Tensor out = layer.forward(Tensor.constant(x));
        INDArray r = GradCheck.randomLike(out.value(), new Rng(5));
        out.backward(r);
        INDArray g = l.grad().dup();
        for (long e = 0; e < l.value().length(); e++) {
            worst = Math.max(worst, GradCheck.checkElement("ia3 l ff=" + feedforward, l.value(), g,
                    GradCheck.unravel(e, l.value().shape()), 1e-6, 1e-6, 1e-4,
                    () -> GradCheck.projectedLoss(in -> layer.forward(in[0]), new INDArray[]{x}, r)));
        }
        assertTrue(worst <= 1.0);
        assertNull(lin.parameter("weight").grad(), "frozen base weight must get no gradient");
        assertNull(lin.parameter("bias").grad(), "frozen base bias must get no gradient");
        // and the math: y = W(x ⊙ l) + b  or  (Wx + b) ⊙ l
        INDArray lv = l.value().reshape(l.value().length());
        INDArray expect = feedforward
                ? Ops.linear(Ops.mul(Tensor.constant(x), Tensor.constant(lv)), Tensor.constant(w), Tensor.constant(b)).value()
                : Ops.mul(Ops.linear(Tensor.constant(x), Tensor.constant(w), Tensor.constant(b)), Tensor.constant(lv)).value();
        assertTrue(out.value().equalsWithEps(expect, 1e-12));
    }

    @Test
    void freshAdapterIsAnIdentityAndBaseGetsNoGradient() throws Exception {
        BertModel bert = (BertModel) RepoFixtures.loadBase("bert", "bert-tiny");
        Map<String, INDArray> ref = SafeTensors.load(RepoFixtures.core("bert-tiny").resolve("reference.safetensors"));
        INDArray ids = ref.get("input_ids");
        INDArray mask = ref.get("attention_mask");
        INDArray types = ref.get("token_type_ids");
        INDArray before = RepoFixtures.output(bert, ids, mask, types);
        PeftModel pm = Peft.apply(bert, new Ia3Config());
        assertEquals(0.0, Fixtures.maxAbsDiff(before, RepoFixtures.output(bert, ids, mask, types), null), 1e-6);
        // bert-tiny: hidden 16, intermediate 32, 2 layers × (key out 16 + value out 16
        // + attention.output.dense in 16 (feed-forward by PEFT's endswith) + output.dense in 32) = 160
        assertEquals(160, pm.trainableParameters().values().stream().mapToLong(p -> p.value().length()).sum());
        Tensor y = bert.forward(ids, mask, types).lastHiddenState();
        y.backward(GradCheck.randomLike(y.value(), new Rng(3)));
        for (Map.Entry<String, Parameter> e : bert.namedParameters().entrySet()) {
            if (e.getKey().contains(".ia3_l.")) {
                assertTrue(e.getValue().grad() != null, e.getKey() + " must get a gradient");
            } else {
                assertNull(e.getValue().grad(), "frozen " + e.getKey() + " got a gradient buffer");
            }
        }
    }

    @Test
    void savedFolderHasPeftLayoutAndResolvedDefaults(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        Module gpt2 = RepoFixtures.loadBase("gpt2", "decoders/gpt2");
        PeftModel pm = Peft.apply(gpt2, new Ia3Config());
        pm.save(tmp);
        String json = Files.readString(tmp.resolve("adapter_config.json"));
        PeftConfig back = PeftConfig.fromJson(json, "saved");
        Ia3Config c = (Ia3Config) back;
        assertEquals(List.of("c_attn", "mlp.c_proj"), c.targetModules().names());
        assertEquals(List.of("mlp.c_proj"), c.feedforwardModules().names());
        assertTrue(c.fanInFanOut(), "GPT-2's Conv1D layers: fan_in_fan_out saved as true");
        for (String key : List.of("\"peft_type\": \"IA3\"", "\"init_ia3_weights\": true", "\"exclude_modules\": null",
                "\"modules_to_save\": null")) {
            assertTrue(json.contains(key), "adapter_config.json lacks " + key + ":\n" + json);
        }
        Map<String, INDArray> t = SafeTensors.load(tmp.resolve("adapter_model.safetensors"));
        assertEquals(4, t.size());
        // GPT-2 fixture: hidden 16; c_attn [in 16 → out 48] scales its output, mlp.c_proj its input
        assertEquals(List.of(48L, 1L), List.of(t.get("base_model.model.transformer.h.0.attn.c_attn.ia3_l").shape()[0],
                t.get("base_model.model.transformer.h.0.attn.c_attn.ia3_l").shape()[1]));
        INDArray ff = t.get("base_model.model.transformer.h.1.mlp.c_proj.ia3_l");
        assertEquals(1L, ff.size(0));
        assertEquals(((LinearLayer) ((Ia3Layer) gpt2.get("transformer.h.1.mlp.c_proj")).baseLayer()).inFeatures(), ff.size(1));
        assertTrue(t.keySet().stream().noneMatch(k -> k.contains("attn.c_proj")), "attn.c_proj is no default target");
    }

    @Test
    void mixedBatchRowsMatchTheirOwnAdapter() throws Exception {
        Module llama = RepoFixtures.loadBase("llama", "decoders/llama-gqa");
        Map<String, INDArray> ref = SafeTensors.load(RepoFixtures.core("decoders/llama-gqa").resolve("reference.safetensors"));
        INDArray ids = ref.get("input_ids");
        INDArray mask = ref.get("attention_mask");
        PeftModel pm = Peft.apply(llama, new Ia3Config().initIa3Weights(false).seed(1), "a");
        pm.addAdapter("b", new Ia3Config().targetModules("q_proj", "down_proj").feedforwardModules("down_proj")
                .initIa3Weights(false).seed(2));
        long rows = ids.size(0);
        assertTrue(rows >= 2, "fixture has " + rows + " rows");
        INDArray[] single = new INDArray[3];
        pm.setAdapter("a");
        single[0] = RepoFixtures.output(llama, ids, mask, null);
        pm.setAdapter("b");
        single[1] = RepoFixtures.output(llama, ids, mask, null);
        try (PeftModel.Scope s = pm.disableAdapter()) {
            single[2] = RepoFixtures.output(llama, ids, mask, null);
        }
        String[] names = {"a", "b", MixedBatch.BASE};
        java.util.List<String> perRow = new java.util.ArrayList<>();
        for (int i = 0; i < rows; i++) {
            perRow.add(names[i % 3]);
        }
        INDArray mixed;
        try (MixedBatch mb = pm.mixedBatch(perRow)) {
            mixed = RepoFixtures.output(llama, ids, mask, null);
        }
        for (int i = 0; i < rows; i++) {
            INDArray want = single[i % 3].slice(i);
            INDArray got = mixed.slice(i);
            double d = Fixtures.maxAbsDiff(got.reshape(1, got.size(0), got.size(1)), want.reshape(1, want.size(0), want.size(1)),
                    mask.getRow(i).reshape(1, mask.size(1)));
            assertTrue(d <= 1e-4, "row " + i + " (" + names[i % 3] + ") differs by " + d);
        }
        assertTrue(Fixtures.maxAbsDiff(single[0], single[1], mask) > 0.1, "the two adapters must differ");
    }

    /** IA3 on an NF4 base: the same as IA3 (same vectors) on the dequantized fp32 weights; merging is refused. */
    @Test
    void worksOnAQuantizedBase() throws Exception {
        Module q = Quantizer.quantize(RepoFixtures.loadBase("llama", "decoders/llama-gqa"), QuantConfig.nf4());
        Module deq = Quantizer.quantize(RepoFixtures.loadBase("llama", "decoders/llama-gqa"), QuantConfig.nf4());
        int n = 0;
        for (Map.Entry<String, Module> e : List.copyOf(deq.namedModules().entrySet())) {
            if (e.getValue() instanceof QuantizedLinear ql) {
                deq.replace(e.getKey(), ql.dequantize());
                n++;
            }
        }
        assertTrue(n > 0);
        Map<String, INDArray> ref = SafeTensors.load(RepoFixtures.core("decoders/llama-gqa").resolve("reference.safetensors"));
        INDArray ids = ref.get("input_ids");
        INDArray mask = ref.get("attention_mask");
        PeftModel pq = Peft.apply(q, new Ia3Config().initIa3Weights(false).seed(9));
        Peft.apply(deq, new Ia3Config().initIa3Weights(false).seed(9));
        assertTrue(((Ia3Layer) q.get("model.layers.0.mlp.down_proj")).baseLayer() instanceof QuantizedLinear);
        INDArray a = RepoFixtures.output(q, ids, mask, null);
        INDArray b = RepoFixtures.output(deq, ids, mask, null);
        double d = Fixtures.maxAbsDiff(a, b, mask);
        assertTrue(d <= 1e-4, "IA3 on NF4 vs on the dequantized weights: " + d);
        assertThrows(IllegalStateException.class, pq::merge);
    }

    @Test
    void badInputIsNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Peft.apply(RepoFixtures.loadBase("bert", "bert-tiny"), new Ia3Config().targetModules("key", "value")
                        .feedforwardModules("output.dense")));
        assertTrue(e.getMessage().contains("feedforward_modules") && e.getMessage().contains("output.dense"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> PeftConfig.fromJson(
                "{\"peft_type\": \"IA3\", \"target_modules\": [\"k_proj\"], \"feedforward_modules\": [\"down_proj\"]}", "cfg.json"));
        assertTrue(e.getMessage().contains("cfg.json") && e.getMessage().contains("feedforward_modules"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Peft.apply(RepoFixtures.loadBase("bert", "bert-tiny"), new Ia3Config().targetModules("LayerNorm")
                        .feedforwardModules(new String[0])));
        assertTrue(e.getMessage().contains("LayerNorm"), e.getMessage());
        Linear lonely = new Linear(3, 3, true, new Rng(1));
        org.peft4j.core.nn.Module box = new org.peft4j.core.nn.Module() {
            {
                registerModule("proj", lonely);
            }
        };
        e = assertThrows(IllegalArgumentException.class, () -> Peft.apply(box, new Ia3Config()));
        assertTrue(e.getMessage().contains("target_modules"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Peft.apply(RepoFixtures.loadBase("bert", "bert-tiny"),
                new Ia3Config().targetModules("nothing_here").feedforwardModules(new String[0])));
        assertTrue(e.getMessage().contains("nothing_here"), e.getMessage());
    }
}
