package org.peft4j.lora;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.LayerNorm;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.ModulesToSaveWrapper;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.peft.TaskType;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.lora.TestUtil.assertClose;
import static org.peft4j.lora.TestUtil.assertExactlyEqual;

/** LoRA applied to a whole model: identity at init, merging, gradients, trainable parameters, disabling. */
class LoraModelTest {

    private static INDArray run(ToyModel m, INDArray ids) {
        try (NoGrad ignored = NoGrad.enter()) {
            return m.forward(ids).value().dup();
        }
    }

    /** Gives every LoRA B (and A) non-trivial fixed-seed values so the adapter changes the output. */
    static void randomizeAdapters(PeftModel pm, long seed) {
        Rng rng = new Rng(seed);
        for (Map.Entry<String, Parameter> e : pm.namedParameters().entrySet()) {
            if (e.getKey().contains("lora_")) {
                Parameter p = e.getValue();
                double[] v = new double[(int) p.length()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = 0.3 * rng.nextGaussian();
                }
                p.setValue(Nd4j.createFromArray(v).reshape('c', p.shape()).castTo(p.value().dataType()));
            }
        }
    }

    @Test
    void freshAdapterLeavesOutputsExactlyUnchanged() {
        INDArray ids = ToyModel.ids(1, 2, 5);
        for (boolean fifo : new boolean[]{false, true}) {
            ToyModel m = new ToyModel(2, fifo, 11);
            INDArray before = run(m, ids);
            PeftModel pm = Peft.apply(m, LoraConfig.builder().r(4).loraAlpha(8).loraDropout(0.1)
                    .targetModules("q_proj", "v_proj", "up_proj", "down_proj", "embed_tokens").seed(3).build());
            assertInstanceOf(LoraLinear.class, m.get("model.layers.0.self_attn.q_proj"));
            assertInstanceOf(LoraEmbedding.class, m.get("model.embed_tokens"));
            pm.eval();
            assertExactlyEqual(before, run(m, ids), "eval output with a fresh adapter (fan_in_fan_out=" + fifo + ")");
            pm.train(); // dropout is on the LoRA branch only, and B = 0
            assertExactlyEqual(before, run(m, ids), "train output with a fresh adapter and dropout");
        }
    }

    @Test
    void mergeMatchesUnmergedAndUnmergeRestoresWeights() {
        INDArray ids = ToyModel.ids(2, 3, 4);
        for (boolean fifo : new boolean[]{false, true}) {
            for (boolean dora : new boolean[]{false, true}) {
                ToyModel m = new ToyModel(2, fifo, 12);
                m.eval();
                Map<String, INDArray> baseWeights = new java.util.LinkedHashMap<>();
                m.namedParameters().forEach((k, p) -> baseWeights.put(k, p.value().dup()));
                LoraConfig.Builder b = LoraConfig.builder().r(3).loraAlpha(6).useDora(dora).seed(5)
                        .targetModules("q_proj", "v_proj", "up_proj", "down_proj");
                if (!dora) {
                    b.targetModules("q_proj", "v_proj", "up_proj", "down_proj", "embed_tokens");
                }
                PeftModel pm = Peft.apply(m, b.build());
                randomizeAdapters(pm, 99);
                INDArray unmerged = run(m, ids);
                INDArray base;
                try (PeftModel.Scope s = pm.disableAdapter()) {
                    base = run(m, ids);
                }
                assertTrue(TestUtil.maxAbsDiff(base, unmerged) > 1e-2, "adapter must change the output");
                pm.merge();
                assertTrue(pm.isMerged());
                assertClose(unmerged, run(m, ids), 1e-5, "merged vs unmerged (fifo=" + fifo + ", dora=" + dora + ")");
                pm.unmerge();
                assertFalse(pm.isMerged());
                assertClose(unmerged, run(m, ids), 1e-5, "unmerged again");
                int restored = 0;
                for (Map.Entry<String, Parameter> e : pm.baseModel().namedParameters().entrySet()) {
                    String orig = e.getKey().replace(".base_layer.", ".");
                    if (baseWeights.containsKey(orig)) {
                        // exact: the bits from before the merge, not W + ΔW − ΔW in fp32
                        assertExactlyEqual(baseWeights.get(orig), e.getValue().value(), "restored " + orig);
                        restored++;
                    }
                }
                assertEquals(baseWeights.size(), restored);
            }
        }
    }

    @Test
    void mergeAndUnloadReturnsPlainModelWithMergedWeights() {
        INDArray ids = ToyModel.ids(3, 2, 6);
        ToyModel m = new ToyModel(2, true, 13);
        m.eval();
        PeftModel pm = Peft.apply(m, LoraConfig.builder().r(2).targetModules("q_proj", "down_proj", "embed_tokens")
                .modulesToSave("classifier").seed(1).build());
        randomizeAdapters(pm, 7);
        Linear cls = (Linear) ((ModulesToSaveWrapper) m.get("classifier")).copyFor("default");
        cls.weight().value().addi(0.25);
        INDArray adapted = run(m, ids);
        Module plain = pm.mergeAndUnload();
        assertSame(m, plain);
        for (Module mod : plain.namedModules().values()) {
            assertFalse(mod instanceof LoraLayer || mod instanceof ModulesToSaveWrapper, "left over: " + mod);
        }
        assertInstanceOf(Linear.class, plain.get("model.layers.1.self_attn.q_proj"));
        assertInstanceOf(Embedding.class, plain.get("model.embed_tokens"));
        assertSame(cls, plain.get("classifier"));
        assertClose(adapted, run(m, ids), 1e-5, "merged and unloaded");
        assertFalse(plain.namedParameters().keySet().stream().anyMatch(k -> k.contains("lora_") || k.contains("base_layer")));
        assertThrows(IllegalStateException.class, () -> pm.setAdapter("default"));
    }

    @Test
    void unloadWithoutMergeGivesBackTheOriginalOutputs() {
        INDArray ids = ToyModel.ids(4, 2, 3);
        ToyModel m = new ToyModel(1, false, 14);
        m.eval();
        INDArray before = run(m, ids);
        PeftModel pm = Peft.apply(m, LoraConfig.builder().targetModules("q_proj").seed(2).build());
        randomizeAdapters(pm, 8);
        pm.unload();
        assertExactlyEqual(before, run(m, ids), "unloaded without merge");
    }

    @Test
    void onlyAdapterTensorsGetGradients() {
        INDArray ids = ToyModel.ids(5, 2, 4);
        ToyModel m = new ToyModel(2, false, 15);
        PeftModel pm = Peft.apply(m, LoraConfig.builder().r(2).loraDropout(0.2).targetModules("q_proj", "v_proj", "embed_tokens")
                .modulesToSave("classifier").seed(4).build());
        randomizeAdapters(pm, 9);
        Tensor loss = Ops.sum(Ops.mul(m.forward(ids), m.forward(ids)));
        loss.backward();
        int withGrad = 0;
        for (Map.Entry<String, Parameter> e : pm.namedParameters().entrySet()) {
            String k = e.getKey();
            boolean adapter = k.contains(".lora_") || k.contains("classifier.modules_to_save.default.");
            if (adapter) {
                assertTrue(e.getValue().isTrainable(), k + " must be trainable");
                assertNotNull(e.getValue().grad(), k + " must get a gradient");
                withGrad++;
            } else {
                assertFalse(e.getValue().isTrainable(), k + " must be frozen");
                assertNull(e.getValue().grad(), k + " (frozen) must have no gradient");
            }
        }
        // 2 layers × (q, v) × (A, B) + embedding (A, B) + classifier copy (weight, bias)
        assertEquals(2 * 2 * 2 + 2 + 2, withGrad);
        assertEquals(withGrad, pm.trainableParameters().size());
        assertTrue(pm.trainableParameters().keySet().stream().allMatch(k -> k.startsWith("base_model.model.")));
        assertTrue(pm.trainableParameters().containsKey("base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"));
        assertTrue(pm.trainableParameters().containsKey("base_model.model.model.embed_tokens.lora_embedding_B.default"));
    }

    @Test
    void frozenBaseLayersRunNoWeightGradientMatmul() {
        for (boolean fifo : new boolean[]{false, true}) {
            ToyModel m = new ToyModel(2, fifo, 18);
            Peft.apply(m, LoraConfig.builder().r(2).targetModules("q_proj", "v_proj", "up_proj").seed(6).build());
            long outIn = Ops.linearWeightGradMatmuls();
            long inOut = org.peft4j.core.nn.Linear.inOutWeightGradMatmuls();
            Ops.sum(m.forward(ToyModel.ids(7, 2, 4))).backward();
            assertNotNull(((LoraLinear) m.get("model.layers.0.self_attn.q_proj")).loraA("default").grad(), "LoRA factors train");
            // every base Linear (wrapped or not, [out, in] or Conv1D [in, out]) is frozen: no weight-gradient GEMM ran
            assertEquals(outIn, Ops.linearWeightGradMatmuls(), "[out, in] weight-gradient matmuls (fifo=" + fifo + ")");
            assertEquals(inOut, org.peft4j.core.nn.Linear.inOutWeightGradMatmuls(), "[in, out] weight-gradient matmuls (fifo=" + fifo + ")");
        }
    }

    @Test
    void biasOptionsMakeBiasesTrainable() {
        INDArray ids = ToyModel.ids(6, 1, 3);
        ToyModel all = new ToyModel(1, false, 16);
        PeftModel pmAll = Peft.apply(all, LoraConfig.builder().targetModules("q_proj").bias("all").build());
        Ops.sum(all.forward(ids)).backward();
        for (Map.Entry<String, Parameter> e : pmAll.namedParameters().entrySet()) {
            boolean bias = e.getKey().endsWith(".bias");
            boolean lora = e.getKey().contains(".lora_");
            assertEquals(bias || lora, e.getValue().isTrainable(), e.getKey());
            if (bias || lora) {
                assertNotNull(e.getValue().grad(), e.getKey());
            } else {
                assertNull(e.getValue().grad(), e.getKey());
            }
        }
        ToyModel only = new ToyModel(1, false, 16);
        PeftModel pmOnly = Peft.apply(only, LoraConfig.builder().targetModules("q_proj").bias("lora_only").build());
        Map<String, Parameter> tr = pmOnly.trainableParameters();
        assertTrue(tr.containsKey("base_model.model.model.layers.0.self_attn.q_proj.base_layer.bias"));
        assertFalse(tr.containsKey("base_model.model.model.layers.0.self_attn.v_proj.bias"));
        assertEquals(3, tr.size());
        Map<String, INDArray> saved = pmOnly.adapterStateDict("default");
        assertTrue(saved.containsKey("base_model.model.model.layers.0.self_attn.q_proj.base_layer.bias"));
        Map<String, INDArray> savedAll = pmAll.adapterStateDict("default");
        assertTrue(savedAll.containsKey("base_model.model.model.norm.bias"));
        assertTrue(savedAll.containsKey("base_model.model.classifier.bias"));
        assertTrue(savedAll.containsKey("base_model.model.model.layers.0.self_attn.q_proj.base_layer.bias"));
    }

    @Test
    void printTrainableParametersUsesPeftFormat() {
        ToyModel m = new ToyModel(2, false, 17);
        long all0 = m.numParameters();
        PeftModel pm = Peft.apply(m, LoraConfig.builder().r(4).targetModules("q_proj", "v_proj").build());
        long trainable = 2L * 2 * (4 * ToyModel.DIM + ToyModel.DIM * 4);
        long all = all0 + trainable;
        String expected = String.format(java.util.Locale.ROOT, "trainable params: %,d || all params: %,d || trainable%%: %.4f",
                trainable, all, 100.0 * trainable / all);
        assertEquals(expected, pm.printTrainableParameters());
        assertEquals("trainable params: 256 || all params: 1,419 || trainable%: 18.0409", pm.printTrainableParameters());
    }

    @Test
    void disableAdapterGivesBaseOutputsAndModulesToSaveOriginals() {
        INDArray ids = ToyModel.ids(7, 2, 3);
        ToyModel m = new ToyModel(1, false, 18);
        m.eval();
        INDArray before = run(m, ids);
        PeftModel pm = Peft.apply(m, LoraConfig.builder().targetModules("q_proj", "embed_tokens").modulesToSave("classifier").build());
        randomizeAdapters(pm, 10);
        ((Linear) ((ModulesToSaveWrapper) m.get("classifier")).copyFor("default")).bias().value().addi(1.0);
        INDArray adapted = run(m, ids);
        assertTrue(TestUtil.maxAbsDiff(before, adapted) > 1e-2);
        try (PeftModel.Scope s = pm.disableAdapter()) {
            assertExactlyEqual(before, run(m, ids), "inside disableAdapter");
        }
        assertExactlyEqual(adapted, run(m, ids), "after disableAdapter");
    }

    @Test
    void multipleAdaptersSwitchDeleteAndTrainOnlyTheActiveOne() {
        INDArray ids = ToyModel.ids(8, 2, 3);
        ToyModel m = new ToyModel(1, false, 19);
        m.eval();
        PeftModel pm = Peft.apply(m, LoraConfig.builder().targetModules("q_proj").seed(1).build());
        pm.addAdapter("other", LoraConfig.builder().r(2).targetModules("q_proj", "v_proj").seed(2).build());
        assertEquals("default", pm.activeAdapter());
        assertEquals(java.util.List.of("default", "other"), pm.adapterNames());
        randomizeAdapters(pm, 11);
        assertTrue(pm.trainableParameters().keySet().stream().allMatch(k -> k.contains(".default.")));
        INDArray outDefault = run(m, ids);
        pm.setAdapter("other");
        assertTrue(pm.trainableParameters().keySet().stream().allMatch(k -> k.contains(".other.")));
        assertEquals(4, pm.trainableParameters().size());
        INDArray outOther = run(m, ids);
        assertTrue(TestUtil.maxAbsDiff(outDefault, outOther) > 1e-3);
        pm.deleteAdapter("other");
        assertEquals("default", pm.activeAdapter());
        assertExactlyEqual(outDefault, run(m, ids), "after deleting the other adapter");
        assertFalse(pm.namedParameters().keySet().stream().anyMatch(k -> k.contains(".other")));
        assertThrows(IllegalArgumentException.class, () -> pm.setAdapter("other"));
    }

    @Test
    void inferenceModeKeepsAdapterFrozen() {
        ToyModel m = new ToyModel(1, false, 20);
        PeftModel pm = Peft.apply(m, LoraConfig.builder().targetModules("q_proj").inferenceMode(true).build());
        assertTrue(pm.trainableParameters().isEmpty());
    }

    @Test
    void layerNormIsNotATarget() {
        ToyModel m = new ToyModel(1, false, 21);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Peft.apply(m, LoraConfig.builder().targetModules("norm").build()));
        assertTrue(e.getMessage().contains("model.norm") && e.getMessage().contains("LayerNorm"), e.getMessage());
        assertInstanceOf(LayerNorm.class, m.get("model.norm"), "a failed apply must leave the model unchanged");
    }

    @Test
    void fanInFanOutFollowsTheTargetLayout() {
        PeftModel conv = Peft.apply(new ToyModel(1, true, 23), LoraConfig.builder().targetModules("q_proj").build());
        assertTrue(((LoraConfig) conv.activeConfig()).fanInFanOut(), "Conv1D targets: corrected to true, as PEFT does");
        PeftModel lin = Peft.apply(new ToyModel(1, false, 23), LoraConfig.builder().fanInFanOut(true).targetModules("q_proj").build());
        assertFalse(((LoraConfig) lin.activeConfig()).fanInFanOut(), "Linear targets: corrected to false");
        assertThrows(IllegalArgumentException.class, () -> LoraConfig.builder().bias(null).build());
    }

    /** A second adapter on Conv1D layers that already carry one keeps fan_in_fan_out true (it used to flip to false). */
    @Test
    void secondAdapterOnWrappedConv1DKeepsFanInFanOut(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        PeftModel pm = Peft.apply(new ToyModel(1, true, 24), LoraConfig.builder().fanInFanOut(true).targetModules("q_proj").build());
        pm.addAdapter("second", LoraConfig.builder().fanInFanOut(true).targetModules("q_proj").build());
        assertTrue(((LoraConfig) pm.config("second")).fanInFanOut(), "second adapter on wrapped Conv1D");
        pm.save(tmp);
        String saved = java.nio.file.Files.readString(tmp.resolve("second").resolve(PeftModel.CONFIG_NAME));
        assertTrue(saved.contains("\"fan_in_fan_out\": true"), saved);
    }

    @Test
    void taskTypeIsKept() {
        ToyModel m = new ToyModel(1, false, 22);
        PeftModel pm = Peft.apply(m, LoraConfig.builder().targetModules("q_proj").taskType(TaskType.SEQ_CLS).build());
        assertEquals(TaskType.SEQ_CLS, pm.activeConfig().taskType());
        assertEquals(DataType.FLOAT, ((LoraLinear) m.get("model.layers.0.self_attn.q_proj")).loraA("default").value().dataType());
    }
}
