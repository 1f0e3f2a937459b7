package org.peft4j.core.peft;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The test-only {@link ScaleMethod} gets apply, save, strict load, enable/disable, set-adapter,
 * delete, mixed batches, modules_to_save and unload from the core alone. Expected values are
 * computed from the plain layers ({@code y = cls(s_v·v(s_q·q(x)))}), never by the adapter code.
 */
class ScaleMethodTest {
    private static final double TOL = 1e-6;

    @TempDir
    Path tmp;

    /** {@code enc.q} 4 → 4, {@code enc.v} 4 → 4, {@code classifier} 4 → 3; forward {@code classifier(v(q(x)))}. */
    static final class Tiny extends Module implements UnaryModule {
        static final class Node extends Module {
            <M extends Module> M add(String name, M m) {
                return registerModule(name, m);
            }
        }

        Tiny(long seed) {
            Rng rng = new Rng(seed);
            Node enc = new Node();
            enc.add("q", new Linear(4, 4, true, rng));
            enc.add("v", new Linear(4, 4, true, rng));
            registerModule("enc", enc);
            registerModule("classifier", new Linear(4, 3, true, rng));
        }

        @Override
        public Tensor forward(Tensor x) {
            Module enc = child("enc");
            Tensor h = enc.child("v", UnaryModule.class).forward(enc.child("q", UnaryModule.class).forward(x));
            return child("classifier", UnaryModule.class).forward(h);
        }
    }

    private static ScaleMethod.ScaleConfig config(double init, String... modulesToSave) {
        ScaleMethod.ScaleConfig c = new ScaleMethod.ScaleConfig();
        c.targetModules = List.of("q", "v");
        c.initScale = init;
        c.setModulesToSave(modulesToSave.length == 0 ? null : List.of(modulesToSave));
        return c;
    }

    private static INDArray x(long seed, int batch) {
        Rng rng = new Rng(seed);
        double[] v = new double[batch * 2 * 4];
        for (int i = 0; i < v.length; i++) {
            v[i] = rng.nextGaussian();
        }
        return Nd4j.createFromArray(v).castTo(DataType.FLOAT).reshape('c', batch, 2, 4);
    }

    private static INDArray run(UnaryModule m, INDArray x) {
        try (NoGrad ignored = NoGrad.enter()) {
            return m.forward(Tensor.constant(x)).value().dup();
        }
    }

    /** {@code cls(sv·v(sq·q(x)))} from a fresh copy of the plain layers of {@code seed}. */
    private static INDArray expected(long seed, INDArray x, double sq, double sv, Linear cls) {
        Tiny plain = new Tiny(seed);
        UnaryModule q = (UnaryModule) plain.get("enc.q");
        UnaryModule v = (UnaryModule) plain.get("enc.v");
        INDArray h = run(q, x).mul(sq);
        h = run(v, h).mul(sv);
        return run(cls == null ? (UnaryModule) plain.get("classifier") : cls, h);
    }

    private static void assertClose(INDArray want, INDArray got, double tol, String what) {
        assertEquals(0.0, want.castTo(DataType.DOUBLE).sub(got.castTo(DataType.DOUBLE)).amaxNumber().doubleValue(), tol, what);
    }

    private static void setScale(Module m, String path, String adapter, double s) {
        ((ScaleMethod.ScaleLayer) m.get(path)).scale(adapter).setValue(Nd4j.createFromArray(new float[]{(float) s}));
    }

    @Test
    void applyScalesTheTargetsAndTrainsOnlyTheScales() {
        Tiny m = new Tiny(1);
        INDArray x = x(2, 3);
        INDArray before = run(m, x);
        PeftModel pm = Peft.apply(m, config(1.0));
        assertInstanceOf(ScaleMethod.ScaleLayer.class, m.get("enc.q"));
        assertClose(before, run(m, x), 0.0, "init_scale 1 is the identity");
        assertEquals(Set.of("base_model.model.enc.q.scale.default", "base_model.model.enc.v.scale.default"),
                pm.trainableParameters().keySet());
        setScale(m, "enc.q", "default", 2.0);
        setScale(m, "enc.v", "default", 0.5);
        assertClose(expected(1, x, 2.0, 0.5, null), run(m, x), TOL, "cls(0.5·v(2·q(x)))");
        // d Σ s·base(x) / ds = Σ base(x): the scale's gradient, against the plain layer
        Ops.sum(((UnaryModule) m.get("enc.q")).forward(Tensor.constant(x))).backward();
        double sumBase = run((UnaryModule) new Tiny(1).get("enc.q"), x).sumNumber().doubleValue();
        assertEquals(sumBase, ((ScaleMethod.ScaleLayer) m.get("enc.q")).scale("default").grad().getDouble(0), 1e-4);
        assertThrows(UnsupportedOperationException.class, pm::merge, "TEST_SCALE declares no merge");
        BackboneInputs in = BackboneInputs.of(Tensor.constant(x), null);
        assertSame(in, pm.prepareInputs(null, in), "a layer-only method leaves the inputs as they are");
    }

    @Test
    void saveAndLoadRoundTripWithStrictErrors() throws IOException {
        Tiny m = new Tiny(3);
        PeftModel pm = Peft.apply(m, config(1.0, "classifier"));
        setScale(m, "enc.q", "default", 1.5);
        setScale(m, "enc.v", "default", -0.25);
        Linear cls = (Linear) ((ModulesToSaveWrapper) m.get("classifier")).copyFor("default");
        cls.bias().value().addi(0.75);
        INDArray x = x(4, 2);
        INDArray adapted = run(m, x);
        assertClose(expected(3, x, 1.5, -0.25, cls), adapted, TOL, "adapted output");
        Path dir = tmp.resolve("scale");
        pm.save(dir);
        Map<String, INDArray> t = new TreeMap<>(SafeTensors.load(dir.resolve(PeftModel.WEIGHTS_NAME)));
        assertEquals(Set.of("base_model.model.enc.q.scale", "base_model.model.enc.v.scale",
                "base_model.model.classifier.weight", "base_model.model.classifier.bias"), t.keySet());
        assertEquals(-0.25, t.get("base_model.model.enc.v.scale").getDouble(0), 0.0);
        assertTrue(Files.readString(dir.resolve(PeftModel.CONFIG_NAME)).contains("\"peft_type\": \"TEST_SCALE\""));

        Tiny fresh = new Tiny(3);
        PeftModel loaded = PeftModel.load(fresh, dir);
        assertClose(adapted, run(fresh, x), 0.0, "reloaded outputs");
        assertTrue(loaded.trainableParameters().isEmpty(), "loaded for inference: frozen");

        // keys with the adapter name inside and PEFT's older modules_to_save form load too
        Map<String, INDArray> renamed = new LinkedHashMap<>();
        t.forEach((k, v) -> renamed.put(k.replace(".scale", ".scale.default").replace("classifier.", "classifier.modules_to_save."), v));
        Path legacy = write("legacy", dir, renamed);
        Tiny again = new Tiny(3);
        PeftModel.load(again, legacy);
        assertClose(adapted, run(again, x), 0.0, "outputs from legacy key forms");

        Map<String, INDArray> missing = new LinkedHashMap<>(t);
        missing.remove("base_model.model.enc.v.scale");
        assertLoadFails(write("missing", dir, missing), "base_model.model.enc.v.scale", "lacks");
        Map<String, INDArray> extra = new LinkedHashMap<>(t);
        extra.put("base_model.model.enc.k.scale", Nd4j.ones(DataType.FLOAT, 1));
        assertLoadFails(write("extra", dir, extra), "base_model.model.enc.k.scale", "do not exist in this base model");
        Map<String, INDArray> shaped = new LinkedHashMap<>(t);
        shaped.put("base_model.model.enc.q.scale", Nd4j.ones(DataType.FLOAT, 2));
        assertLoadFails(write("shaped", dir, shaped), "base_model.model.enc.q.scale", "[1]", "[2]");
        Map<String, INDArray> noCopy = new LinkedHashMap<>(t);
        noCopy.remove("base_model.model.classifier.bias");
        assertLoadFails(write("nocopy", dir, noCopy), "base_model.model.classifier.bias", "lacks");
    }

    private Path write(String name, Path from, Map<String, INDArray> tensors) throws IOException {
        Path d = tmp.resolve(name);
        Files.createDirectories(d);
        Files.copy(from.resolve(PeftModel.CONFIG_NAME), d.resolve(PeftModel.CONFIG_NAME));
        SafeTensors.write(d.resolve(PeftModel.WEIGHTS_NAME), tensors);
        return d;
    }

    private static void assertLoadFails(Path dir, String... parts) {
        Tiny base = new Tiny(3);
        INDArray x = x(5, 1);
        INDArray before = run(base, x);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PeftModel.load(base, dir));
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), "'" + p + "' in: " + e.getMessage());
        }
        assertTrue(e.getMessage().contains(dir.resolve(PeftModel.WEIGHTS_NAME).toString()), "names the file: " + e.getMessage());
        for (Module mod : base.namedModules().values()) {
            assertFalse(mod instanceof AdapterLayer, "a failed load leaves no adapter layer: " + mod);
        }
        assertClose(before, run(base, x), 0.0, "a failed load leaves the base model as it was");
    }

    @Test
    void setAdapterDisableAndDeleteComeFromTheCore() {
        Tiny m = new Tiny(6);
        PeftModel pm = Peft.apply(m, config(2.0), "a");
        pm.addAdapter("b", config(3.0));
        INDArray x = x(7, 2);
        assertEquals("a", pm.activeAdapter());
        assertClose(expected(6, x, 2.0, 2.0, null), run(m, x), TOL, "adapter a");
        assertTrue(pm.trainableParameters().keySet().stream().allMatch(k -> k.endsWith(".a")));
        pm.setAdapter("b");
        assertClose(expected(6, x, 3.0, 3.0, null), run(m, x), TOL, "adapter b");
        assertTrue(pm.trainableParameters().keySet().stream().allMatch(k -> k.endsWith(".b")));
        try (PeftModel.Scope s = pm.disableAdapter()) {
            assertClose(expected(6, x, 1.0, 1.0, null), run(m, x), 0.0, "disabled: the base model");
        }
        assertClose(expected(6, x, 3.0, 3.0, null), run(m, x), TOL, "enabled again");
        pm.deleteAdapter("b");
        assertEquals("a", pm.activeAdapter());
        assertEquals(Set.of("a"), ((AdapterLayer) m.get("enc.v")).adapterNames());
        assertFalse(pm.namedParameters().keySet().stream().anyMatch(k -> k.endsWith(".b")));
        assertClose(expected(6, x, 2.0, 2.0, null), run(m, x), TOL, "back to a");
        Module plain = pm.unload();
        assertInstanceOf(Linear.class, plain.get("enc.q"));
        assertClose(expected(6, x, 1.0, 1.0, null), run(m, x), 0.0, "unloaded");
    }

    @Test
    void mixedBatchRowsEqualSingleAdapterRunsAndCopiesToSave() {
        Tiny m = new Tiny(8);
        PeftModel pm = Peft.apply(m, config(0.5), "a");
        pm.addAdapter("b", config(-2.0, "classifier"));
        Linear copyB = (Linear) ((ModulesToSaveWrapper) m.get("classifier")).copyFor("b");
        copyB.weight().value().addi(0.3);
        INDArray x = x(9, 3);
        List<String> names = List.of("b", MixedBatch.BASE, "a");
        INDArray mixed;
        try (NoGrad ng = NoGrad.enter(); MixedBatch mb = pm.mixedBatch(names)) {
            mixed = m.forward(Tensor.constant(x)).value().dup();
        }
        double[] scale = {-2.0, 1.0, 0.5};
        for (int row = 0; row < 3; row++) {
            INDArray xr = x.get(NDArrayIndex.interval(row, row + 1)).dup();
            INDArray want = expected(8, xr, scale[row], scale[row], row == 0 ? copyB : null);
            assertClose(want, mixed.get(NDArrayIndex.interval(row, row + 1)), TOL, "row " + row + " (" + names.get(row) + ")");
        }
        // the routed branch is differentiable: numerical gradient of the layer in a mixed batch (DOUBLE)
        Linear q = new Linear(Nd4j.rand(DataType.DOUBLE, 4, 4).subi(0.5), Nd4j.rand(DataType.DOUBLE, 4), false);
        ScaleMethod.ScaleLayer layer = new ScaleMethod.ScaleLayer(q);
        layer.addAdapter("a", 1.7);
        layer.scale("a").setValue(Nd4j.createFromArray(1.7));
        try (MixedBatch mb = MixedBatch.open(List.of("a", MixedBatch.BASE))) {
            GradCheck.of("ScaleLayer mixed rows", in -> layer.forward(in[0]), Nd4j.rand(DataType.DOUBLE, 2, 3, 4)).check();
        }
    }
}
