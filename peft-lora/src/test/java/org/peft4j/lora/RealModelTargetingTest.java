package org.peft4j.lora;

import org.peft4j.core.testing.RepoFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.model.gpt2.Gpt2LMHeadModel;
import org.peft4j.core.model.llama.LlamaForCausalLM;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.peft.TaskType;
import org.peft4j.core.tensor.Rng;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * PEFT's targeting rules on the repository's real model families (tiny checkpoints):
 * {@code all-linear} wraps every linear layer but the output head, and {@code rank_pattern} /
 * {@code alpha_pattern} give each matched layer its own rank and scaling.
 */
class RealModelTargetingTest {

    @TempDir
    Path tmp;

    /** Paths of the plain Linear layers of a model (before any adapter). */
    private static List<String> linearPaths(Module m) {
        List<String> out = new ArrayList<>();
        m.namedModules().forEach((k, v) -> {
            if (v instanceof Linear) {
                out.add(k);
            }
        });
        return out;
    }

    private static List<String> loraPaths(Module m) {
        List<String> out = new ArrayList<>();
        m.namedModules().forEach((k, v) -> {
            if (v instanceof LoraLinear) {
                out.add(k);
            }
        });
        return out;
    }

    @Test
    void allLinearLeavesAnUntiedLmHeadAlone() throws IOException {
        for (String fixture : List.of("decoders/mistral", "decoders/llama-headdim")) {
            LlamaForCausalLM m = LlamaForCausalLM.load(RepoFixtures.core(fixture));
            assertInstanceOf(Linear.class, m.get("lm_head"), fixture + ": untied head is its own Linear");
            List<String> linear = linearPaths(m);
            Peft.apply(m, LoraConfig.builder().r(2).allLinear().taskType(TaskType.CAUSAL_LM).seed(1).build());
            assertInstanceOf(Linear.class, m.get("lm_head"), fixture + ": lm_head must not be wrapped");
            List<String> expected = new ArrayList<>(linear);
            expected.remove("lm_head");
            assertEquals(expected, loraPaths(m), fixture);
            assertEquals(2 * 7, expected.size(), fixture + ": q, k, v, o, gate, up, down in each of 2 layers");
        }
    }

    @Test
    void allLinearOnGpt2WrapsTheConv1DLayersAndNotTheEmbeddings() throws IOException {
        Gpt2LMHeadModel m = Gpt2LMHeadModel.load(RepoFixtures.core("decoders/gpt2"));
        Peft.apply(m, LoraConfig.builder().r(2).allLinear().fanInFanOut(true).taskType(TaskType.CAUSAL_LM).seed(2).build());
        List<String> wrapped = loraPaths(m);
        assertEquals(2 * 4, wrapped.size(), "c_attn, attn.c_proj, c_fc, mlp.c_proj in each of 2 layers: " + wrapped);
        assertTrue(wrapped.contains("transformer.h.1.attn.c_attn") && wrapped.contains("transformer.h.0.mlp.c_proj"), wrapped.toString());
        assertFalse(m.namedModules().get("transformer.wte") instanceof LoraLayer, "embeddings are not linear layers");
    }

    @Test
    void allLinearForSequenceClassificationLeavesTheClassifierAlone() {
        BertModel bert = BertModel.load(RepoFixtures.core("bert-tiny"));
        BertForSequenceClassification m = BertForSequenceClassification.withNewHead(bert, 2, BertConfig.Pooling.MEAN, new Rng(3));
        List<String> linear = linearPaths(m);
        assertTrue(linear.contains("classifier"));
        PeftModel pm = Peft.apply(m, LoraConfig.builder().r(2).allLinear().taskType(TaskType.SEQ_CLS)
                .modulesToSave("classifier").seed(4).build());
        List<String> expected = new ArrayList<>(linear);
        expected.remove("classifier");
        assertEquals(expected, loraPaths(m));
        assertTrue(expected.contains("bert.encoder.layer.1.attention.self.query"));
        // the head trains as a module to save, in full
        assertTrue(pm.trainableParameters().containsKey("base_model.model.classifier.modules_to_save.default.weight"),
                pm.trainableParameters().keySet().toString());
    }

    @Test
    void rankAndAlphaPatternsSetEachLayersRankAndScaling() throws IOException {
        LlamaForCausalLM m = LlamaForCausalLM.load(RepoFixtures.core("decoders/llama-headdim"));
        LoraConfig c = LoraConfig.builder().r(4).loraAlpha(8).targetModules("q_proj", "v_proj", "o_proj")
                .rankPattern(Map.of("v_proj", 2, "layers\\.1\\.self_attn\\.q_proj", 3))
                .alphaPattern(Map.of("o_proj", 16)).seed(5).build();
        PeftModel pm = Peft.apply(m, c);
        for (int layer = 0; layer < 2; layer++) {
            String p = "model.layers." + layer + ".self_attn.";
            int qRank = layer == 1 ? 3 : 4;
            checkRank(m, p + "q_proj", qRank, 8.0 / qRank);
            checkRank(m, p + "v_proj", 2, 8.0 / 2);
            checkRank(m, p + "o_proj", 4, 16.0 / 4);
        }
        // the patterns are written to adapter_config.json and give the same layers back on load
        pm.save(tmp.resolve("patterns"));
        LlamaForCausalLM fresh = LlamaForCausalLM.load(RepoFixtures.core("decoders/llama-headdim"));
        PeftModel.load(fresh, tmp.resolve("patterns"));
        checkRank(fresh, "model.layers.1.self_attn.q_proj", 3, 8.0 / 3);
        checkRank(fresh, "model.layers.0.self_attn.v_proj", 2, 4.0);
        checkRank(fresh, "model.layers.0.self_attn.o_proj", 4, 4.0);
    }

    private static void checkRank(Module m, String path, int r, double scaling) {
        LoraLinear l = (LoraLinear) m.get(path);
        assertEquals(r, l.settings("default").r(), path + " rank");
        assertEquals(r, l.loraA("default").size(0), path + " lora_A rows");
        assertEquals(r, l.loraB("default").size(1), path + " lora_B columns");
        assertEquals(scaling, l.settings("default").scaling(), 1e-12, path + " scaling");
    }
}
