package org.peft4j.adapter;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.nn.LayerNorm;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.AdapterHubLayout;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.testing.RepoFixtures;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * AdapterFusion and AdapterHub's {@code .bin} files: the fusion folder and the {@code pytorch_adapter.bin}
 * + {@code pytorch_model_head.bin} folder written by scripts/reference/bottleneck_reference.py (plain
 * PyTorch, float64) reproduce their outputs to 1e-4; a fusion peft4j saves is checked by the same
 * script; gradients through the fusion layer and a fused block; the fusion trains, the adapters and
 * the base do not.
 */
class FusionTest {
    private static final Path FIX = Fixtures.fixture("bottleneck");

    private static INDArray out(Module m, Map<String, INDArray> r) {
        return RepoFixtures.output(m, r.get("input_ids"), r.get("attention_mask"), r.get("token_type_ids"));
    }

    @Test
    void torchBinAdapterAndHeadGiveTheReferenceLogits() throws Exception {
        Path dir = FIX.resolve("bert-par-bn-bin");
        Map<String, INDArray> io = SafeTensors.load(dir.resolve("expected.safetensors"));
        BertModel enc = (BertModel) RepoFixtures.loadBase("bert", "bert-tiny");
        BertForSequenceClassification m = BertForSequenceClassification.withNewHead(enc, 2, BertConfig.Pooling.MEAN, new Rng(1));
        PeftModel pm = PeftModel.load(m, dir.resolve("adapter"));
        assertEquals(List.of("classifier"), pm.activeConfig().modulesToSave(), "the head file's modules train in full");
        m.eval();
        double errH = Fixtures.maxAbsDiff(out(enc, io), io.get("output"), null);
        double errL = Fixtures.maxAbsDiff(m.forward(io.get("input_ids"), io.get("attention_mask"), io.get("token_type_ids")).value(),
                io.get("logits"), null);
        System.out.printf("pytorch_adapter.bin: max |hidden - reference| = %.2e, |logits - reference| = %.2e%n", errH, errL);
        assertTrue(errH <= 1e-4 && errL <= 1e-4, errH + " " + errL);
    }

    @Test
    void fusionFolderGivesTheReferenceOutputsAndSavesInTheSameLayout() throws Exception {
        Path dir = FIX.resolve("fusion");
        Map<String, INDArray> io = SafeTensors.load(dir.resolve("expected.safetensors"));
        BertModel bert = (BertModel) RepoFixtures.loadBase("bert", "bert-tiny");
        PeftModel pm = PeftModel.load(bert, dir, PeftModel.DEFAULT_ADAPTER, true);
        assertEquals(List.of("a", "b", "a,b"), pm.adapterNames());
        assertEquals("a,b", pm.activeAdapter());
        INDArray got = out(bert, io);
        double err = Fixtures.maxAbsDiff(got, io.get("output"), null);
        System.out.printf("AdapterFusion fixture: max |peft4j - reference| = %.3e%n", err);
        assertTrue(err <= 1e-4, "Fuse(a, b): " + err);
        // the fusion layers train, the fused adapters and the base do not
        for (String k : pm.trainableParameters().keySet()) {
            assertTrue(k.contains(".adapter_fusion_layer.a,b."), k);
        }
        assertEquals(2 * 2 * (16 * 16 + 16), pm.numTrainableParameters(), "query and key per layer");
        bert.train();
        Tensor y = bert.forward(io.get("input_ids"), io.get("attention_mask"), io.get("token_type_ids")).lastHiddenState();
        y.backward(GradCheck.randomLike(y.value(), new Rng(3)));
        for (Map.Entry<String, Parameter> e : bert.namedParameters().entrySet()) {
            if (e.getKey().contains("adapter_fusion_layer")) {
                assertTrue(e.getValue().grad() != null, e.getKey());
            } else {
                assertNull(e.getValue().grad(), "frozen " + e.getKey() + " got a gradient buffer");
            }
        }
        bert.eval();

        // saved: the fusion in the folder, the adapters in <dir>/<name>/, AdapterHub's files and keys
        Path root = RepoFixtures.repoRoot().resolve("peft-adapter/target/fusion-interop");
        AtomicFiles.deleteRecursively(root);
        Path saved = root.resolve("fuse-ab/fusion");
        pm.save(saved);
        assertTrue(Files.isRegularFile(saved.resolve(AdapterHubLayout.FUSION_CONFIG_NAME)));
        assertTrue(SafeTensors.load(saved.resolve(AdapterHubLayout.FUSION_WEIGHTS_NAME))
                .containsKey("encoder.layer.1.output.adapter_fusion_layer.a,b.query.weight"));
        assertTrue(SafeTensors.load(saved.resolve("b").resolve(AdapterHubLayout.WEIGHTS_NAME))
                .containsKey("encoder.layer.1.output.adapters.b.adapter_up.weight"));
        Map<String, INDArray> dump = new LinkedHashMap<>();
        for (String k : List.of("input_ids", "attention_mask", "token_type_ids")) {
            dump.put(k, io.get(k));
        }
        dump.put("output", got);
        SafeTensors.write(root.resolve("fuse-ab/io.safetensors"), dump);
        BertModel again = (BertModel) RepoFixtures.loadBase("bert", "bert-tiny");
        PeftModel.load(again, saved);
        assertEquals(0.0, Fixtures.maxAbsDiff(out(again, io), got, null), 0.0);
        List<String> cmd = List.of("/usr/bin/python3", RepoFixtures.repoRoot().resolve("scripts/reference/bottleneck_reference.py").toString(),
                "check-fusion", root.toString());
        Assumptions.assumeTrue(RepoFixtures.pythonTorchAvailable(), "/usr/bin/python3 with torch not available; run: " + String.join(" ", cmd));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(5, TimeUnit.MINUTES);
        System.out.print(text);
        assertEquals(0, p.exitValue(), "Python fusion check failed:\n" + text);
    }

    /** Peft.apply with a fusion over two adapter folders: they load frozen, the new fusion (and head) train. */
    @Test
    void fusionOverFoldersTrainsOnlyTheFusion(@TempDir Path tmp) throws Exception {
        BertModel enc = (BertModel) RepoFixtures.loadBase("bert", "bert-tiny");
        BertForSequenceClassification m = BertForSequenceClassification.withNewHead(enc, 2, BertConfig.Pooling.MEAN, new Rng(1));
        BottleneckConfig fc = BottleneckConfig.fusionOf(FusionConfig.staticFusion(), List.of(FIX.resolve("fusion/a"), FIX.resolve("fusion/b")));
        fc.setModulesToSave(List.of("classifier"));
        fc.setSeed(4);
        PeftModel pm = Peft.apply(m, fc);
        assertEquals(List.of("a", "b", "default"), pm.adapterNames());
        assertEquals(List.of("a", "b"), ((BottleneckConfig) pm.config("default")).fusedAdapters());
        long classifier = 2 * 16 + 2;
        assertEquals(2 * 2 * (16 * 16 + 16) + classifier, pm.numTrainableParameters());
        // a fresh fusion over a and b: N(0, 0.02) query/key, so near-uniform attention over the two
        pm.save(tmp.resolve("f"));
        assertTrue(Files.isRegularFile(tmp.resolve("f").resolve(AdapterHubLayout.HEAD_WEIGHTS_NAME)));
        assertTrue(Files.isRegularFile(tmp.resolve("f/a").resolve(AdapterHubLayout.WEIGHTS_NAME)));
        BertForSequenceClassification m2 = BertForSequenceClassification.withNewHead(
                (BertModel) RepoFixtures.loadBase("bert", "bert-tiny"), 2, BertConfig.Pooling.MEAN, new Rng(9));
        PeftModel back = PeftModel.load(m2, tmp.resolve("f"));
        assertEquals("default", back.activeAdapter());
        Map<String, INDArray> r = SafeTensors.load(FIX.resolve("fusion/expected.safetensors"));
        m.eval();
        m2.eval();
        INDArray l1 = m.forward(r.get("input_ids"), r.get("attention_mask"), r.get("token_type_ids")).value();
        INDArray l2 = m2.forward(r.get("input_ids"), r.get("attention_mask"), r.get("token_type_ids")).value();
        assertEquals(0.0, Fixtures.maxAbsDiff(l1, l2, null), 0.0);
    }

    @Test
    void badFusionsAreNamed(@TempDir Path tmp) throws Exception {
        // adapters of different hidden sizes
        Path a = tmp.resolve("a");
        Path b = tmp.resolve("b");
        copy(FIX.resolve("fusion/a"), a);
        copy(FIX.resolve("fusion/b"), b);
        Path cfg = b.resolve("adapter_config.json");
        Files.writeString(cfg, Files.readString(cfg).replace("\"hidden_size\": 16", "\"hidden_size\": 384"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BottleneckConfig.fusionOf(FusionConfig.staticFusion(), List.of(a, b)));
        assertTrue(e.getMessage().contains("different hidden sizes") && e.getMessage().contains("hidden_size"), e.getMessage());
        // the same in a fusion folder
        Path f = tmp.resolve("f");
        copy(FIX.resolve("fusion"), f);
        Path fb = f.resolve("b/adapter_config.json");
        Files.writeString(fb, Files.readString(fb).replace("\"hidden_size\": 16", "\"hidden_size\": 384"));
        Module bert = RepoFixtures.loadBase("bert", "bert-tiny");
        e = assertThrows(IllegalArgumentException.class, () -> PeftModel.load(bert, f));
        assertTrue(e.getMessage().contains("different hidden sizes") && e.getMessage().contains("hidden_size"), e.getMessage());
        // fused adapters at different places (AdapterHub: "must define the same value for config attribute")
        PeftModel pm = Peft.apply(bert, BottleneckTest.config(BnConfig.seqBn().set("reduction_factor", 4), 1), "s");
        pm.addAdapter("d", BottleneckTest.config(BnConfig.doubleSeqBn().set("reduction_factor", 4), 2));
        e = assertThrows(IllegalArgumentException.class,
                () -> pm.addAdapter("f", BottleneckConfig.fusion(FusionConfig.staticFusion(), List.of("s", "d"))));
        assertTrue(e.getMessage().contains("config.mh_adapter"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> pm.addAdapter("f", BottleneckConfig.fusion(FusionConfig.staticFusion(), List.of("s", "zz"))));
        assertTrue(e.getMessage().contains("'zz'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> FusionConfig.dynamicFusion().validate());
        assertTrue(e.getMessage().contains("config.regularization"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> FusionConfig.fromMap(Map.of("querry", true), "x.json"));
        assertTrue(e.getMessage().contains("config.querry") && e.getMessage().contains("x.json"), e.getMessage());
    }

    private static void copy(Path from, Path to) throws Exception {
        try (var s = Files.walk(from)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                Path t = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(t);
                } else {
                    Files.copy(p, t);
                }
            }
        }
    }

    private static void toDouble(Module m) {
        for (Parameter p : m.namedParameters().values()) {
            p.resetValue(p.value().castTo(DataType.DOUBLE));
        }
    }

    /** Central differences through the fusion layer (query, key and value projections on) and its parameters. */
    @Test
    void gradientsThroughTheFusionLayer() {
        for (FusionConfig c : List.of(FusionConfig.staticFusion(),
                FusionConfig.staticFusion().set("value", true).set("value_initialized", true).set("residual_before", true),
                FusionConfig.staticFusion().set("value", true).set("value_before_softmax", false).set("query_before_ln", true))) {
            AdapterFusionLayer f = new AdapterFusionLayer(c, 8, 0.0, 5);
            toDouble(f);
            for (Parameter p : f.namedParameters().values()) {
                p.value().addi(GradCheck.random(new Rng(6), p.value().shape()).muli(0.3));
            }
            INDArray q = GradCheck.random(new Rng(1), 2, 3, 8);
            INDArray u1 = GradCheck.random(new Rng(2), 2, 3, 8);
            INDArray u2 = GradCheck.random(new Rng(3), 2, 3, 8);
            INDArray r = GradCheck.random(new Rng(4), 2, 3, 8);
            Function<Tensor[], Tensor> fn = in -> f.forward(in[0], List.of(in[1], in[2]), in[3]);
            double worst = GradCheck.of("fusion " + c, fn::apply, q, u1, u2, r).maxElements(12).check();
            worst = Math.max(worst, checkParameters(f, fn, new INDArray[]{q, u1, u2, r}));
            assertTrue(worst <= 1.0);
        }
    }

    /** Central differences through a BERT-style (post-norm) residual step with Fuse(a, b): inputs and fusion parameters. */
    @Test
    void gradientsThroughAFusedBlock() {
        BottleneckLayer layer = new BottleneckLayer(false, 8);
        layer.addAdapter("a", new BottleneckAdapter(BnConfig.seqBn().set("reduction_factor", 2), 8, 0, 1));
        layer.addAdapter("b", new BottleneckAdapter(BnConfig.seqBn().set("reduction_factor", 4), 8, 0, 2));
        layer.addFusion("a,b", List.of("a", "b"), new AdapterFusionLayer(FusionConfig.staticFusion(), 8, 0.0, 3));
        layer.setActiveAdapters(List.of("a,b"));
        LayerNorm ln = new LayerNorm(8, 1e-5);
        toDouble(layer);
        toDouble(ln);
        for (Parameter p : layer.namedParameters().values()) {
            p.value().addi(GradCheck.random(new Rng(7), p.value().shape()).muli(0.3));
        }
        INDArray h = GradCheck.random(new Rng(1), 2, 3, 8);
        INDArray r = GradCheck.random(new Rng(2), 2, 3, 8);
        Function<Tensor[], Tensor> fn = in -> layer.forward(in[0], in[1], ln);
        double worst = GradCheck.of("fused block", fn::apply, h, r).maxElements(16).check();
        worst = Math.max(worst, checkParameters(layer, fn, new INDArray[]{h, r}));
        assertTrue(worst <= 1.0);
    }

    private static double checkParameters(Module m, Function<Tensor[], Tensor> fn, INDArray[] in) {
        m.namedParameters().values().forEach(Parameter::zeroGrad);
        Tensor[] ts = new Tensor[in.length];
        for (int i = 0; i < in.length; i++) {
            ts[i] = Tensor.constant(in[i]);
        }
        Tensor y = fn.apply(ts);
        INDArray rr = GradCheck.randomLike(y.value(), new Rng(11));
        y.backward(rr);
        double worst = 0;
        List<String> checked = new ArrayList<>();
        for (Map.Entry<String, Parameter> e : m.namedParameters().entrySet()) {
            Parameter p = e.getValue();
            INDArray g = p.grad().dup();
            for (long i = 0; i < Math.min(p.value().length(), 6); i++) {
                worst = Math.max(worst, GradCheck.checkElement(e.getKey(), p.value(), g, GradCheck.unravel(i, p.value().shape()),
                        1e-6, 1e-6, 1e-4, () -> GradCheck.projectedLoss(fn, in, rr)));
            }
            checked.add(e.getKey());
        }
        assertTrue(checked.size() >= 4, checked.toString());
        return worst;
    }
}
