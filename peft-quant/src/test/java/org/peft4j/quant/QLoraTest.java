package org.peft4j.quant;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.llama.LlamaForCausalLM;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.train.AdamW;
import org.peft4j.lora.LoraConfig;
import org.peft4j.lora.LoraLinear;
import org.peft4j.lora.LoraOps;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** LoRA on quantized base layers: training, gradients, merging, adapter folders. */
class QLoraTest {

    static LoraConfig lora(int r) {
        return LoraConfig.builder().r(r).loraAlpha(2 * r).allLinear().build();
    }

    /** Next-token cross-entropy of {@code ids [B, T]}. */
    static Tensor loss(LlamaForCausalLM m, INDArray ids) {
        Tensor logits = m.forward(ids, null);                      // [B, T, V]
        long b = ids.size(0);
        long t = ids.size(1);
        INDArray targets = Nd4j.createUninitialized(DataType.INT64, b, t);
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < t; j++) {
                targets.putScalar(i, j, j + 1 < t ? ids.getLong(i, j + 1) : Ops.IGNORE_INDEX);
            }
        }
        return Ops.crossEntropy(logits, targets, Ops.Reduction.MEAN);
    }

    static INDArray logits(LlamaForCausalLM m, INDArray ids) {
        try (NoGrad ignored = NoGrad.enter()) {
            return m.forward(ids, null).value();
        }
    }

    /** ||a − b|| / ||b|| (Frobenius). */
    static double rel(INDArray a, INDArray b) {
        return a.sub(b).norm2Number().doubleValue() / b.norm2Number().doubleValue();
    }

    @Test
    void loraOnAQuantizedModelTrainsOnlyTheFactorsThroughFrozenCodes() {
        LlamaForCausalLM m = Quantizer.quantize(TinyModels.llama(1), QuantConfig.nf4());
        QuantizedLinear q0 = (QuantizedLinear) m.get("model.layers.0.mlp.up_proj");
        byte[] codesBefore = ((Quantized4bit) q0.quantizedWeight()).packedCodes();
        PeftModel pm = QLora.apply(m, lora(4));
        int wrapped = 0;
        for (Module mod : m.namedModules().values()) {
            if (mod instanceof LoraLinear ll) {
                assertTrue(ll.baseLayer() instanceof QuantizedLinear, "LoRA wraps the quantized layer");
                wrapped++;
            }
        }
        assertEquals(14, wrapped, "7 linear layers per block x 2 blocks");
        Map<String, Parameter> trainable = pm.trainableParameters();
        assertEquals(28, trainable.size());
        for (String k : trainable.keySet()) {
            assertTrue(k.contains("lora_A") || k.contains("lora_B"), k);
        }
        INDArray ids = TinyModels.ids(2, 12, 96, 3);
        m.train();
        AdamW opt = new AdamW(trainable, 1e-2, 0.0);
        double first = 0;
        double last = 0;
        for (int step = 0; step < 15; step++) {
            Tensor l = loss(m, ids);
            if (step == 0) {
                first = l.item();
            }
            last = l.item();
            l.backward();
            opt.step();
            opt.zeroGrad();
        }
        assertTrue(last < first - 0.5, "loss " + first + " -> " + last);
        assertArrayEquals(codesBefore, ((Quantized4bit) q0.quantizedWeight()).packedCodes(), "codes never change");
    }

    @Test
    void loraFactorGradientsThroughAQuantizedBaseMatchCentralDifferences() {
        for (QuantConfig c : QuantizedLinearTest.configs()) {
            QuantizedLinear q = new QuantizedLinear(QuantizedLinear.quantizeWeight(
                    QuantizedLinearTest.gaussian(31, 0.5, 6, 64), c), new Parameter(GradCheck.random(new Rng(32), 6), false));
            INDArray x = GradCheck.random(new Rng(33), 2, 3, 64);
            INDArray a = GradCheck.random(new Rng(34), 3, 64).muli(0.3);
            INDArray b = GradCheck.random(new Rng(35), 6, 3).muli(0.3);
            double worst = GradCheck.of("QLoRA " + c, in -> LoraOps.loraAdd(q.forward(in[0]), in[0], in[1], in[2], 1.5, 0.0,
                    false, null, null), x, a, b).maxElements(50).check();
            assertTrue(worst <= 1.0);
        }
    }

    @Test
    void loraLinearOnAQuantizedLayerComputesBasePlusScaledBA() {
        QuantizedLinear q = new QuantizedLinear(QuantizedLinear.quantizeWeight(
                QuantizedLinearTest.gaussian(41, 0.5, 8, 64), QuantConfig.nf4()), null);
        LoraLinear ll = new LoraLinear(q);
        ll.addAdapter("default", 4, 8, 0.0, false, false, "gaussian", new Rng(1), null, false);
        ll.loraB("default").setValue(QuantizedLinearTest.gaussian(42, 0.1, 8, 4));
        INDArray x = QuantizedLinearTest.gaussian(43, 1, 3, 64);
        INDArray y = ll.forward(Tensor.constant(x)).value();
        INDArray w = q.denseWeight().add(ll.deltaWeight("default"));
        INDArray expected = x.mmul(w.transpose());
        assertTrue(rel(y, expected) < 1e-5);
        // the factors get gradients, the base has none to give
        ll.loraA("default").setTrainable(true);
        ll.loraB("default").setTrainable(true);
        Tensor out = ll.forward(Tensor.constant(x));
        out.backward(Nd4j.onesLike(out.value()));
        assertTrue(ll.loraA("default").grad() != null && ll.loraB("default").grad() != null);
    }

    @Test
    void mergingIntoAQuantizedLayerWithoutDequantizationIsAClearError() {
        LlamaForCausalLM m = Quantizer.quantize(TinyModels.llama(2), QuantConfig.nf4());
        PeftModel pm = QLora.apply(m, lora(2));
        INDArray ids = TinyModels.ids(1, 6, 96, 1);
        INDArray before = logits(m, ids);
        IllegalStateException e = assertThrows(IllegalStateException.class, pm::merge);
        assertTrue(e.getMessage().contains("QLora.mergeAndUnload") && e.getMessage().contains("dequantiz"), e.getMessage());
        assertFalse(pm.isMerged(), "nothing merged");
        assertEquals(0.0, logits(m, ids).sub(before).amaxNumber().doubleValue(), 0.0, "model unchanged");
        assertThrows(IllegalStateException.class, pm::mergeAndUnload);
    }

    @Test
    void mergeAndUnloadDequantizesMergesAndOptionallyRequantizes() {
        INDArray ids = TinyModels.ids(2, 8, 96, 5);
        for (boolean requantize : new boolean[]{false, true}) {
            LlamaForCausalLM m = Quantizer.quantize(TinyModels.llama(3), QuantConfig.nf4());
            PeftModel pm = QLora.apply(m, lora(4));
            // a non-trivial adapter: B random
            Rng rng = new Rng(9);
            for (Map.Entry<String, Parameter> e : pm.trainableParameters().entrySet()) {
                if (e.getKey().contains("lora_B")) {
                    e.getValue().setValue(GradCheck.random(rng, e.getValue().shape()).muli(0.05).castTo(DataType.FLOAT));
                }
            }
            INDArray adapted = logits(m, ids);
            QLora.Result r = QLora.mergeAndUnloadWithReport(pm, requantize);
            LlamaForCausalLM merged = (LlamaForCausalLM) r.model();
            assertEquals(14, r.report().quantizedLayersMerged());
            boolean anyQuantized = Quantizer.isQuantized(merged);
            assertEquals(requantize, anyQuantized);
            for (Module mod : merged.namedModules().values()) {
                assertFalse(mod instanceof LoraLinear, "adapter layers are gone");
            }
            double err = rel(logits(merged, ids), adapted);
            if (requantize) {
                // the rounding re-quantization adds is of the order of the base quantization error itself
                LlamaForCausalLM fp32 = TinyModels.llama(3);
                double quantErr = rel(logits(Quantizer.quantize(TinyModels.llama(3), QuantConfig.nf4()), ids), logits(fp32, ids));
                assertTrue(r.report().maxAbsRoundingError() > 0, "re-quantization rounds");
                assertTrue(err > 0 && err < 2 * quantErr, "requantized merge error " + err + " vs NF4 error " + quantErr);
            } else {
                assertTrue(merged.get("model.layers.1.self_attn.o_proj") instanceof Linear);
                assertTrue(err < 1e-5, "dequantized merge is exact up to float rounding: " + err);
            }
        }
    }

    @Test
    void aQloraAdapterFolderIsAnOrdinaryLoraFolder(@TempDir Path tmp) throws Exception {
        LlamaForCausalLM m = Quantizer.quantize(TinyModels.llama(4), QuantConfig.nf4());
        PeftModel pm = QLora.apply(m, lora(4));
        Rng rng = new Rng(10);
        for (Parameter p : pm.trainableParameters().values()) {
            p.setValue(GradCheck.random(rng, p.shape()).muli(0.05).castTo(DataType.FLOAT));
        }
        INDArray ids = TinyModels.ids(1, 7, 96, 2);
        INDArray adapted = logits(m, ids);
        Path dir = tmp.resolve("adapter");
        pm.save(dir);
        JsonNode cfg = JsonFiles.read(dir.resolve(PeftModel.CONFIG_NAME));
        assertEquals("LORA", cfg.get("peft_type").asText());
        assertFalse(cfg.toString().contains("quant"), "no quantization settings in the adapter config");
        Map<String, INDArray> tensors = SafeTensors.load(dir.resolve(PeftModel.WEIGHTS_NAME));
        for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
            assertTrue(e.getKey().startsWith("base_model.model.") && (e.getKey().endsWith("lora_A.weight")
                    || e.getKey().endsWith("lora_B.weight")), e.getKey());
            assertEquals(DataType.FLOAT, e.getValue().dataType());
        }
        assertTrue(tensors.containsKey("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"));
        assertArrayEquals(new long[]{4, 160}, tensors.get("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight").shape());
        // onto a freshly quantized base: identical outputs
        LlamaForCausalLM q2 = Quantizer.quantize(TinyModels.llama(4), QuantConfig.nf4());
        PeftModel.load(q2, dir);
        assertEquals(0.0, logits(q2, ids).sub(adapted).amaxNumber().doubleValue(), 1e-6);
        // onto the fp32 base: loads as plain LoRA; outputs differ by about the base quantization error
        LlamaForCausalLM fp32 = TinyModels.llama(4);
        double baseErr = rel(logits(Quantizer.quantize(TinyModels.llama(4), QuantConfig.nf4()), ids), logits(fp32, ids));
        PeftModel.load(fp32, dir);
        double err = rel(logits(fp32, ids), adapted);
        assertTrue(err > 0 && err < 1.5 * baseErr, "fp32 base + QLoRA adapter vs quantized: " + err + " (base NF4 error " + baseErr + ")");
        assertTrue(Arrays.equals(new long[]{1, 7, 96}, logits(fp32, ids).shape()));
    }
}
