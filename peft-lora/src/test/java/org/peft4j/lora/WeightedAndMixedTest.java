package org.peft4j.lora;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.peft.MixedBatch;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.NoGrad;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.peft4j.lora.TestUtil.assertClose;

/** add_weighted_adapter (linear, cat, svd) and mixed-adapter batches. */
class WeightedAndMixedTest {

    private static PeftModel twoAdapters(ToyModel m, int r1, int r2, int alpha2) {
        PeftModel pm = Peft.apply(m, LoraConfig.builder().r(r1).loraAlpha(2 * r1).targetModules("q_proj", "v_proj", "embed_tokens")
                .seed(1).build(), "a");
        pm.addAdapter("b", LoraConfig.builder().r(r2).loraAlpha(alpha2).targetModules("q_proj", "embed_tokens").seed(2).build());
        LoraModelTest.randomizeAdapters(pm, 5);
        return pm;
    }

    private static INDArray d(INDArray a) {
        return a.castTo(DataType.DOUBLE);
    }

    @Test
    void linearCombinationFollowsPeftFormula() {
        ToyModel m = new ToyModel(2, false, 1);
        PeftModel pm = twoAdapters(m, 3, 3, 12);
        double w1 = 0.7;
        double w2 = -0.4;
        pm.addWeightedAdapter(List.of("a", "b"), List.of(w1, w2), "mix", "linear");
        LoraConfig c = (LoraConfig) pm.config("mix");
        assertEquals(3, c.r());
        assertEquals(3, c.loraAlpha());
        for (String path : List.of("model.layers.0.self_attn.q_proj", "model.embed_tokens")) {
            LoraLayer l = (LoraLayer) m.get(path);
            double sa = l.settings("a").scaling();   // 2
            double sb = l.settings("b").scaling();   // 4
            double ka = Math.sqrt(Math.abs(w1 * sa)) * Math.signum(w1 * sa);
            double kb = Math.sqrt(Math.abs(w2 * sb)) * Math.signum(w2 * sb);
            INDArray expA = d(l.loraA("a").value()).mul(ka).add(d(l.loraA("b").value()).mul(kb));
            INDArray expB = d(l.loraB("a").value()).mul(Math.abs(ka)).add(d(l.loraB("b").value()).mul(Math.abs(kb)));
            assertClose(expA, l.loraA("mix").value(), 1e-6, path + " A");
            assertClose(expB, l.loraB("mix").value(), 1e-6, path + " B");
            assertEquals(1.0, l.settings("mix").scaling(), 0.0);
        }
        // a layer holding only adapter a: the mix is a's factors scaled by √|w1·s_a|
        LoraLayer v = (LoraLayer) m.get("model.layers.1.self_attn.v_proj");
        assertClose(d(v.deltaWeight("a")).mul(w1), v.deltaWeight("mix"), 1e-5, "single-source layer delta");
        // single adapter: linear is exact, ΔW_mix = w·ΔW_a
        pm.addWeightedAdapter(List.of("a"), List.of(1.5), "scaled", "svd");
        LoraLayer q = (LoraLayer) m.get("model.layers.0.self_attn.q_proj");
        assertClose(d(q.deltaWeight("a")).mul(1.5), q.deltaWeight("scaled"), 1e-5, "single-adapter combination");
    }

    @Test
    void catDeltaIsTheExactWeightedSum() {
        ToyModel m = new ToyModel(1, false, 2);
        PeftModel pm = twoAdapters(m, 2, 3, 6);
        pm.addWeightedAdapter(List.of("a", "b"), List.of(0.5, 2.0), "cat", "cat");
        assertEquals(5, ((LoraConfig) pm.config("cat")).r());
        for (String path : List.of("model.layers.0.self_attn.q_proj", "model.embed_tokens")) {
            LoraLayer l = (LoraLayer) m.get(path);
            INDArray expected = d(l.deltaWeight("a")).mul(0.5).add(d(l.deltaWeight("b")).mul(2.0));
            assertClose(expected, l.deltaWeight("cat"), 1e-5, path + " cat delta");
            assertEquals(5, l.loraA("cat").size(0));
        }
        // v_proj holds only adapter a (rank 2): its cat factors are padded with zero rows/columns
        LoraLayer v = (LoraLayer) m.get("model.layers.0.self_attn.v_proj");
        assertClose(d(v.deltaWeight("a")).mul(0.5), v.deltaWeight("cat"), 1e-5, "padded cat delta");
        assertEquals(0.0, v.loraA("cat").value().get(NDArrayIndex.interval(2, 5), NDArrayIndex.all()).amaxNumber().doubleValue(), 0.0);
        assertThrows(IllegalArgumentException.class,
                () -> pm.addWeightedAdapter(List.of("a", "b"), List.of(1.0, 1.0), "lin", "linear"), "unequal ranks");
    }

    @Test
    void svdDeltaIsTheTruncatedWeightedSum() {
        ToyModel m = new ToyModel(1, false, 3);
        PeftModel pm = twoAdapters(m, 2, 2, 8);
        // rank 4 ≥ rank of the sum: the SVD reproduces Σ w_i·ΔW_i exactly
        pm.addWeightedAdapter(List.of("a", "b"), List.of(1.0, -0.5), "full", "svd", 4);
        // rank 1: the best rank-1 approximation (Eckart-Young), checked against LAPACK's SVD of the sum
        pm.addWeightedAdapter(List.of("a", "b"), List.of(1.0, -0.5), "r1", "svd", 1);
        assertEquals(2, ((LoraConfig) pm.config("a")).r());
        LoraLayer q = (LoraLayer) m.get("model.layers.0.self_attn.q_proj");
        INDArray sum = d(q.deltaWeight("a")).add(d(q.deltaWeight("b")).mul(-0.5));
        assertClose(sum, q.deltaWeight("full"), 1e-5, "svd rank 4");
        INDArray f = sum.dup('f');
        long rows = f.size(0);
        long cols = f.size(1);
        INDArray s = Nd4j.create(DataType.DOUBLE, Math.min(rows, cols));
        INDArray u = Nd4j.create(DataType.DOUBLE, new long[]{rows, rows}, 'f');
        INDArray vt = Nd4j.create(DataType.DOUBLE, new long[]{cols, cols}, 'f');
        Nd4j.getBlasWrapper().lapack().gesvd(f, s, u, vt);
        INDArray best = u.getColumn(0).reshape(rows, 1).mul(s.getDouble(0)).mmul(vt.getRow(0).reshape(1, cols));
        assertClose(best, q.deltaWeight("r1"), 1e-5, "svd rank 1");
        assertEquals(4, ((LoraConfig) pm.config("full")).r());
    }

    @Test
    void combinedAdapterSavesAndIsInactiveAndFrozen() {
        ToyModel m = new ToyModel(1, false, 4);
        PeftModel pm = twoAdapters(m, 2, 2, 4);
        pm.addWeightedAdapter(List.of("a", "b"), List.of(1.0, 1.0), "mix", "cat");
        assertEquals("a", pm.activeAdapter());
        assertTrue(pm.trainableParameters().keySet().stream().noneMatch(k -> k.contains(".mix")));
        assertFalse(pm.adapterStateDict("mix").isEmpty());
        pm.setAdapter("mix");
        assertTrue(pm.trainableParameters().keySet().stream().allMatch(k -> k.contains(".mix")));
    }

    @Test
    void mixedBatchRowsEqualSingleAdapterRuns() {
        ToyModel m = new ToyModel(2, false, 5);
        m.eval();
        PeftModel pm = Peft.apply(m, LoraConfig.builder().r(2).targetModules("q_proj", "up_proj", "embed_tokens").seed(1).build(), "a");
        pm.addAdapter("b", LoraConfig.builder().r(3).useDora(true).targetModules("q_proj", "v_proj").seed(2).build());
        pm.addAdapter("c", LoraConfig.builder().r(1).targetModules("down_proj", "embed_tokens").modulesToSave("classifier").seed(3).build());
        LoraModelTest.randomizeAdapters(pm, 9);
        ((org.peft4j.core.nn.Linear) ((org.peft4j.core.peft.ModulesToSaveWrapper) m.get("classifier")).copyFor("c"))
                .weight().value().addi(0.3);
        INDArray ids = ToyModel.ids(6, 5, 4);
        List<String> names = List.of("b", MixedBatch.BASE, "a", "c", "b");
        INDArray mixed;
        try (NoGrad ng = NoGrad.enter(); MixedBatch mb = pm.mixedBatch(names)) {
            mixed = m.forward(ids).value().dup();
        }
        for (int row = 0; row < names.size(); row++) {
            String n = names.get(row);
            INDArray single;
            INDArray rowIds = ids.getRow(row).reshape(1, 4).dup();
            try (NoGrad ng = NoGrad.enter()) {
                if (n.equals(MixedBatch.BASE)) {
                    try (PeftModel.Scope s = pm.disableAdapter()) {
                        single = m.forward(rowIds).value().dup();
                    }
                } else {
                    pm.setAdapter(n);
                    single = m.forward(rowIds).value().dup();
                }
            }
            assertClose(single, mixed.get(NDArrayIndex.interval(row, row + 1)), 1e-6, "row " + row + " (" + n + ")");
        }
        assertThrows(IllegalArgumentException.class, () -> pm.mixedBatch(List.of("a", "nope")));
    }

    @Test
    void mixedBatchIsDifferentiableForTheLoraFactors() {
        ToyModel m = new ToyModel(1, false, 6);
        PeftModel pm = Peft.apply(m, LoraConfig.builder().r(2).targetModules("q_proj").seed(1).build(), "a");
        pm.addAdapter("b", LoraConfig.builder().r(2).targetModules("q_proj").seed(2).build());
        LoraModelTest.randomizeAdapters(pm, 3);
        INDArray ids = ToyModel.ids(7, 2, 3);
        LoraLinear q = (LoraLinear) m.get("model.layers.0.self_attn.q_proj");
        try (MixedBatch mb = pm.mixedBatch(List.of("b", "a"))) {
            org.peft4j.core.tensor.Ops.sum(m.forward(ids)).backward();
        }
        INDArray mixedGrad = q.loraA("a").grad().dup();
        assertTrue(q.loraA("b").grad() == null, "b is routed but frozen (a is the active, trainable adapter)");
        q.loraA("a").zeroGrad();
        q.loraB("a").zeroGrad();
        // the same gradient as a plain run of row 1 alone through adapter a
        org.peft4j.core.tensor.Ops.sum(m.forward(ids.getRow(1).reshape(1, 3).dup())).backward();
        assertClose(q.loraA("a").grad(), mixedGrad, 1e-6, "gradient of A from its rows");
    }
}
