package org.peft4j.adapter;

import org.peft4j.core.testing.RepoFixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.nn.LayerNorm;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.quant.QuantConfig;
import org.peft4j.quant.Quantizer;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bottleneck adapters: AdapterHub-layout folders from scripts/reference/bottleneck_reference.py
 * (plain-PyTorch adapter math, float64) reproduce their outputs on the tiny BERT to 1e-4; folders
 * peft4j writes are checked by the same script; identity at init, gradients, GPT-2 / LLaMA
 * insertion points, a 4-bit base and bad input.
 */
class BottleneckTest {

    private static Map<String, INDArray> ref(String fixture) throws Exception {
        return SafeTensors.load(RepoFixtures.core(fixture).resolve("reference.safetensors"));
    }

    private static INDArray out(Module m, Map<String, INDArray> r) {
        return RepoFixtures.output(m, r.get("input_ids"), r.get("attention_mask"), r.get("token_type_ids"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"bert-seq-bn", "bert-double-seq-bn", "bert-par-bn", "bert-general"})
    void adapterHubFolderGivesTheReferenceOutputs(String name) throws Exception {
        Path dir = Fixtures.fixture("bottleneck").resolve(name);
        Module bert = RepoFixtures.loadBase("bert", "bert-tiny");
        Map<String, INDArray> io = SafeTensors.load(dir.resolve("expected.safetensors"));
        INDArray before = out(bert, io);
        JsonNode meta = new ObjectMapper().readTree(dir.resolve("case.json").toFile());
        PeftModel pm = PeftModel.load(bert, dir.resolve("adapter"), meta.get("name").asText());
        assertEquals(meta.get("tensors").asInt(), pm.adapterStateDict(meta.get("name").asText()).size());
        INDArray got = out(bert, io);
        double err = Fixtures.maxAbsDiff(got, io.get("output"), null);
        double change = Fixtures.maxAbsDiff(before, io.get("output"), null);
        System.out.printf("AdapterHub fixture %s: max |peft4j - reference| = %.3e (adapter changes the output by %.3f)%n",
                name, err, change);
        assertTrue(change > 0.5, name + ": the adapter must change the output (" + change + ")");
        assertTrue(err <= 1e-4, name + ": max |peft4j - reference| = " + err);
        // deactivated: the plain model again, exactly
        try (PeftModel.Scope off = pm.disableAdapter()) {
            assertEquals(0.0, Fixtures.maxAbsDiff(out(bert, io), before, null), 0.0);
        }
        // loaded under another name (AdapterHub's load_as): the keys are renamed, the outputs the same
        Module again = RepoFixtures.loadBase("bert", "bert-tiny");
        PeftModel.load(again, dir.resolve("adapter"));
        assertEquals(0.0, Fixtures.maxAbsDiff(out(again, io), got, null), 0.0);
    }

    /** AdapterHub's Stack(a, b) and Average(a, b, weights=[0.7, 0.3]) over two loaded folders, against the script. */
    @Test
    void stackAndAverageGiveTheReferenceOutputs() throws Exception {
        Path dir = Fixtures.fixture("bottleneck").resolve("compose");
        Module bert = RepoFixtures.loadBase("bert", "bert-tiny");
        Map<String, INDArray> io = SafeTensors.load(dir.resolve("expected.safetensors"));
        PeftModel pm = PeftModel.load(bert, dir.resolve("adapter_a"), "a");
        pm.loadAdapter(dir.resolve("adapter_b"), "b");
        pm.setAdapter("b");
        INDArray single = out(bert, io);
        Compositions.stack(pm, List.of("a", "b"));
        double errStack = Fixtures.maxAbsDiff(out(bert, io), io.get("stack"), null);
        Compositions.average(pm, List.of("a", "b"), List.of(7.0, 3.0));   // normalised to 0.7, 0.3
        double errAvg = Fixtures.maxAbsDiff(out(bert, io), io.get("average"), null);
        System.out.printf("Stack: %.3e, Average: %.3e%n", errStack, errAvg);
        assertTrue(errStack <= 1e-4, "Stack(a, b): " + errStack);
        assertTrue(errAvg <= 1e-4, "Average(a, b): " + errAvg);
        assertTrue(Fixtures.maxAbsDiff(io.get("stack"), single, null) > 0.1, "Stack(a, b) differs from b alone");
        // a Stack of one adapter is that adapter
        Compositions.stack(pm, List.of("b"));
        assertTrue(Fixtures.maxAbsDiff(out(bert, io), single, null) <= 1e-6);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Compositions.stack(pm, List.of("a", "zz")));
        assertTrue(e.getMessage().contains("'zz'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Compositions.average(pm, List.of("a", "b"), List.of(1.0)));
        assertTrue(e.getMessage().contains("1 weights for 2 adapters"), e.getMessage());
    }

    private static Map<String, BnConfig> exportConfigs() {
        Map<String, BnConfig> m = new LinkedHashMap<>();
        m.put("seq", BnConfig.seqBn().set("reduction_factor", 4));
        m.put("double", BnConfig.doubleSeqBn().set("reduction_factor", 8));
        m.put("par", BnConfig.parBn());
        m.put("general", BnConfig.general(true, true, 4, "gelu").set("ln_after", true).set("scaling", "channel")
                .set("residual_before_ln", "post_add").set("original_ln_before", true).set("leave_out", List.of(0)));
        return m;
    }

    private static void randomize(Map<String, Parameter> params, long seed) {
        Rng rng = new Rng(seed);
        for (Parameter p : params.values()) {
            INDArray v = p.value();
            for (long i = 0; i < v.length(); i++) {
                v.putScalar(i, v.getDouble(i) + 0.3 * rng.nextGaussian());
            }
        }
    }

    @Test
    void savedFoldersAreCheckedByThePythonReference() throws Exception {
        Path root = RepoFixtures.repoRoot().resolve("peft-adapter/target/bn-interop");
        AtomicFiles.deleteRecursively(root);
        Files.createDirectories(root);
        Map<String, INDArray> r = ref("bert-tiny");
        int k = 0;
        for (Map.Entry<String, BnConfig> e : exportConfigs().entrySet()) {
            Module bert = RepoFixtures.loadBase("bert", "bert-tiny");
            PeftModel pm = Peft.apply(bert, config(e.getValue(), 5 + k), e.getKey());
            randomize(pm.trainableParameters(), 40 + k++);
            Path dir = root.resolve(e.getKey());
            pm.save(dir.resolve("adapter"));
            Map<String, INDArray> io = new LinkedHashMap<>();
            io.put("input_ids", r.get("input_ids"));
            io.put("attention_mask", r.get("attention_mask"));
            io.put("token_type_ids", r.get("token_type_ids"));
            io.put("output", out(bert, r));
            SafeTensors.write(dir.resolve("io.safetensors"), io);
            Files.writeString(dir.resolve("case.json"), "{\"base_fixture\": \"bert-tiny\"}");
            // and peft4j reads its own folder back
            Module again = RepoFixtures.loadBase("bert", "bert-tiny");
            PeftModel.load(again, dir.resolve("adapter"));
            assertEquals(0.0, Fixtures.maxAbsDiff(out(again, r), io.get("output"), null), 0.0);
        }
        JsonNode cfg = new ObjectMapper().readTree(root.resolve("seq/adapter/adapter_config.json").toFile());
        for (String key : List.of("config", "hidden_size", "model_class", "model_name", "model_type", "name", "version")) {
            assertTrue(cfg.has(key), "adapter_config.json lacks " + key);
        }
        assertEquals("adapters.1.2.0", cfg.get("version").asText());
        assertTrue(cfg.get("config").get("original_ln_before").asBoolean());
        assertTrue(SafeTensors.load(root.resolve("seq/adapter/adapter.safetensors"))
                .containsKey("encoder.layer.1.output.adapters.seq.adapter_down.0.weight"));
        List<String> cmd = List.of("/usr/bin/python3", RepoFixtures.repoRoot().resolve("scripts/reference/bottleneck_reference.py").toString(),
                "check", root.toString());
        Assumptions.assumeTrue(RepoFixtures.pythonTorchAvailable(), "/usr/bin/python3 with torch not available; run: " + String.join(" ", cmd));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(5, TimeUnit.MINUTES);
        System.out.print(text);
        assertEquals(0, p.exitValue(), "Python bottleneck reference check failed:\n" + text);
    }

    /** A fresh adapter with a zero up projection (par_bn's "mam_adapter" init) is an exact identity on every family. */
    @ParameterizedTest
    @ValueSource(strings = {"bert:bert-tiny", "gpt2:decoders/gpt2", "llama:decoders/llama-gqa", "llama:decoders/mistral"})
    void freshAdapterIsAnIdentity(String spec) throws Exception {
        String family = spec.split(":")[0];
        String fixture = spec.split(":")[1];
        Module m = RepoFixtures.loadBase(family, fixture);
        Map<String, INDArray> r = ref(fixture);
        INDArray mask = family.equals("bert") ? null : r.get("attention_mask");
        INDArray before = out(m, r);
        PeftModel pm = Peft.apply(m, config(BnConfig.parBn(), 1), "par");
        pm.addAdapter("seq", config(BnConfig.seqBn().set("init_weights", "mam_adapter").set("reduction_factor", 4), 2));
        pm.addAdapter("houlsby", config(BnConfig.doubleSeqBn().set("init_weights", "mam_adapter").set("reduction_factor", 4), 3));
        for (String a : List.of("par", "seq", "houlsby")) {
            pm.setAdapter(a);
            assertTrue(Fixtures.maxAbsDiff(out(m, r), before, mask) <= 1e-5, spec + " " + a + " is not an identity at init");
        }
        // AdapterHub's default "bert" init: N(0, 0.02) up weights, so only nearly an identity (logits move < 0.25)
        pm.addAdapter("bertinit", config(BnConfig.doubleSeqBn().set("reduction_factor", 4), 4));
        pm.setAdapter("bertinit");
        double d = Fixtures.maxAbsDiff(out(m, r), before, mask);
        assertTrue(d > 0 && d < 0.25, spec + ": bert-init adapter changes the output by " + d);
        // after "training" the adapter matters; the insertion points carry AdapterHub's names
        pm.setAdapter("houlsby");
        randomize(pm.trainableParameters(), 9);
        assertTrue(Fixtures.maxAbsDiff(out(m, r), before, mask) > 0.1, spec + ": the adapter has no effect");
        String key = switch (family) {
            case "bert" -> "encoder.layer.0.attention.output.adapters.houlsby.adapter_up.weight";
            case "gpt2" -> "transformer.h.0.attention_adapters.adapters.houlsby.adapter_up.weight";
            default -> "model.layers.0.attention_adapters.adapters.houlsby.adapter_up.weight";
        };
        assertTrue(pm.adapterStateDict("houlsby").containsKey(PeftModel.MODEL_PREFIX + key), pm.adapterStateDict("houlsby").keySet().toString());
    }

    /**
     * Central differences (DOUBLE, h = 1e-6, |diff| ≤ 1e-6 + 1e-4·|g|) through every adapter form with
     * BERT's post-norm step: with respect to the sub-layer output h [2, 3, 8], the residual r and
     * every adapter parameter.
     */
    @Test
    void gradientsThroughAdapterForms() {
        List<BnConfig> forms = List.of(BnConfig.seqBn().set("reduction_factor", 2), BnConfig.doubleSeqBn().set("reduction_factor", 4),
                BnConfig.parBn(), BnConfig.general(false, true, 2, "tanh").set("ln_before", true).set("ln_after", true)
                        .set("adapter_residual_before_ln", true).set("scaling", "learned").set("residual_before_ln", false));
        int k = 0;
        for (BnConfig c : forms) {
            BottleneckAdapter a = new BottleneckAdapter(c, 8, 0, 10 + k);
            LayerNorm ln = new LayerNorm(8, 1e-5);
            for (Parameter p : a.namedParameters().values()) {
                p.resetValue(p.value().castTo(DataType.DOUBLE).addi(GradCheck.random(new Rng(20 + k), p.value().shape()).muli(0.3)));
            }
            ln.weight().resetValue(ln.weight().value().castTo(DataType.DOUBLE));
            ln.bias().resetValue(ln.bias().value().castTo(DataType.DOUBLE));
            INDArray h = GradCheck.random(new Rng(1 + k), 2, 3, 8);
            INDArray r = GradCheck.random(new Rng(2 + k), 2, 3, 8);
            double worst = GradCheck.of("adapter " + k, in -> a.forward(in[0], in[1], ln), h, r).check();
            assertTrue(worst <= 1.0);
            a.namedParameters().values().forEach(Parameter::zeroGrad);   // check() above accumulated into them
            Tensor y = a.forward(Tensor.constant(h), Tensor.constant(r), ln);
            INDArray rr = GradCheck.randomLike(y.value(), new Rng(3));
            y.backward(rr);
            for (Map.Entry<String, Parameter> e : a.namedParameters().entrySet()) {
                Parameter p = e.getValue();
                INDArray g = p.grad().dup();
                for (long i = 0; i < Math.min(p.value().length(), 12); i++) {
                    worst = Math.max(worst, GradCheck.checkElement("adapter " + k + " " + e.getKey(), p.value(), g,
                            GradCheck.unravel(i, p.value().shape()), 1e-6, 1e-6, 1e-4,
                            () -> GradCheck.projectedLoss(in -> a.forward(in[0], in[1], ln), new INDArray[]{h, r}, rr)));
                }
            }
            assertTrue(worst <= 1.0);
            k++;
        }
    }

    @Test
    void trainAdapterFreezesTheBaseAndOnlyAdaptersGetGradients() throws Exception {
        BertModel bert = (BertModel) RepoFixtures.loadBase("bert", "bert-tiny");
        PeftModel pm = Peft.apply(bert, config(BnConfig.doubleSeqBn().set("reduction_factor", 4), 1), "a");
        pm.addAdapter("b", config(BnConfig.seqBn().set("reduction_factor", 4), 2));
        Map<String, Parameter> trainable = new LinkedHashMap<>();
        pm.trainableParameters().forEach((k, p) -> trainable.put(k.substring(PeftModel.MODEL_PREFIX.length()), p));
        // 2 layers × 2 places × (down 4·16 + 4, up 16·4 + 16) = 592
        assertEquals(592, trainable.values().stream().mapToLong(p -> p.value().length()).sum());
        assertEquals(trainable.keySet(), bert.namedTrainableParameters().keySet());
        Map<String, INDArray> r = ref("bert-tiny");
        Tensor y = bert.forward(r.get("input_ids"), r.get("attention_mask"), r.get("token_type_ids")).lastHiddenState();
        y.backward(GradCheck.randomLike(y.value(), new Rng(3)));
        for (Map.Entry<String, Parameter> e : bert.namedParameters().entrySet()) {
            if (trainable.containsKey(e.getKey())) {
                assertTrue(e.getValue().grad() != null, e.getKey());
            } else {
                assertNull(e.getValue().grad(), "frozen " + e.getKey() + " got a gradient buffer");
            }
        }
    }

    @Test
    void worksOnAQuantizedBase() throws Exception {
        Module q = Quantizer.quantize(RepoFixtures.loadBase("llama", "decoders/llama-gqa"), QuantConfig.nf4());
        Map<String, INDArray> r = ref("decoders/llama-gqa");
        INDArray before = out(q, r);
        PeftModel pm = Peft.apply(q, config(BnConfig.parBn(), 1), "par");
        assertTrue(Fixtures.maxAbsDiff(out(q, r), before, r.get("attention_mask")) <= 1e-5);
        randomize(pm.trainableParameters(), 3);
        assertTrue(Fixtures.maxAbsDiff(out(q, r), before, r.get("attention_mask")) > 0.1);
        assertTrue(pm.trainableParameters().size() > 0);
    }

    @Test
    void badInputIsNamed(@TempDir Path tmp) throws Exception {
        Module bert = RepoFixtures.loadBase("bert", "bert-tiny");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Peft.apply(bert, config(BnConfig.seqBn().set("reduction_factor", 32), 1), "x"));
        assertTrue(e.getMessage().contains("reduction_factor") && e.getMessage().contains("no bottleneck dimension"), e.getMessage());
        assertTrue(BottleneckMethod.layers(bert).isEmpty(), "a bad config leaves the model untouched");
        assertTrue(bert.namedTrainableParameters().size() > 0, "and not frozen");
        Module plain = new Module() {
            {
                registerModule("proj", new Linear(4, 4, true, new Rng(1)));
            }
        };
        e = assertThrows(IllegalArgumentException.class, () -> Peft.apply(plain, config(BnConfig.seqBn(), 1), "x"));
        assertTrue(e.getMessage().contains("no place for bottleneck adapters"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> BnConfig.seqBn().set("use_gating", true).validate());
        assertTrue(e.getMessage().contains("use_gating"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> BnConfig.preset("lora"));
        assertTrue(e.getMessage().contains("lora"), e.getMessage());
        PeftModel pm = Peft.apply(bert, config(BnConfig.seqBn().set("reduction_factor", 4), 1), "x");
        e = assertThrows(IllegalArgumentException.class, () -> pm.addAdapter("x", config(BnConfig.parBn(), 1)));
        assertTrue(e.getMessage().contains("'x' already exists"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> pm.addAdapter("adapter_fusion_layer", config(BnConfig.parBn(), 1)));
        assertTrue(e.getMessage().contains("adapter_fusion_layer"), e.getMessage());
        pm.save(tmp.resolve("x"));
        // a BERT adapter placed on GPT-2: the family is named
        Module gpt2 = RepoFixtures.loadBase("gpt2", "decoders/gpt2");
        e = assertThrows(IllegalArgumentException.class, () -> PeftModel.load(gpt2, tmp.resolve("x")));
        assertTrue(e.getMessage().contains("model_type 'bert'") && e.getMessage().contains("gpt2"), e.getMessage());
        assertTrue(BottleneckMethod.layers(gpt2).isEmpty());
        // a folder for another hidden size
        Path cfg = tmp.resolve("x/adapter_config.json");
        Module bert2 = RepoFixtures.loadBase("bert", "bert-tiny");
        Files.writeString(cfg, Files.readString(cfg).replace("\"hidden_size\": 16", "\"hidden_size\": 32"));
        e = assertThrows(IllegalArgumentException.class, () -> PeftModel.load(bert2, tmp.resolve("x")));
        assertTrue(e.getMessage().contains("hidden_size 32") && e.getMessage().contains("adapter_config.json"), e.getMessage());
        Files.writeString(cfg, Files.readString(cfg).replace("\"hidden_size\": 32", "\"hidden_size\": 16")
                .replace("\"use_gating\": false", "\"use_gating\": true"));
        e = assertThrows(IllegalArgumentException.class, () -> PeftModel.load(bert2, tmp.resolve("x"), "y"));
        assertTrue(e.getMessage().contains("use_gating") && e.getMessage().contains("adapter_config.json"), e.getMessage());
    }

    static BottleneckConfig config(BnConfig c, long seed) {
        BottleneckConfig b = BottleneckConfig.of(c);
        b.setSeed(seed);
        b.setBaseModelNameOrPath("bert-tiny");
        return b;
    }
}
