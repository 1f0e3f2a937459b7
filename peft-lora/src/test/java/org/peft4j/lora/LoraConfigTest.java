package org.peft4j.lora;

import org.junit.jupiter.api.Test;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftMethods;
import org.peft4j.core.peft.TargetModules;
import org.peft4j.core.peft.TaskType;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** adapter_config.json reading and writing with PEFT's keys, defaults and formatting. */
class LoraConfigTest {

    @Test
    void defaultsAreThoseOfPeft() {
        LoraConfig c = LoraConfig.builder().targetModules("q").build();
        assertEquals(8, c.r());
        assertEquals(8, c.loraAlpha());
        assertEquals(0.0, c.loraDropout());
        assertEquals("none", c.bias());
        assertFalse(c.fanInFanOut());
        assertFalse(c.useRslora());
        assertFalse(c.useDora());
        assertEquals("true", c.initLoraWeights());
        assertTrue(c.rankPattern().isEmpty());
        assertNull(c.layersToTransform());
        assertNull(c.modulesToSave());
        assertEquals("LORA", c.peftType());
        assertTrue(PeftMethods.installedTypes().contains("LORA"));
        assertEquals(List.of("LORA"), Peft.installedTypes());
    }

    @Test
    void jsonIsWrittenAsPeftWritesIt() {
        LoraConfig c = LoraConfig.builder().r(4).loraAlpha(16).loraDropout(0.05).targetModules("value", "query")
                .taskType(TaskType.SEQ_CLS).modulesToSave("classifier").baseModelNameOrPath("sentence-transformers/all-MiniLM-L6-v2")
                .build();
        String expected = String.join("\n",
                "{",
                "  \"alpha_pattern\": {},",
                "  \"base_model_name_or_path\": \"sentence-transformers/all-MiniLM-L6-v2\",",
                "  \"bias\": \"none\",",
                "  \"exclude_modules\": null,",
                "  \"fan_in_fan_out\": false,",
                "  \"inference_mode\": false,",
                "  \"init_lora_weights\": true,",
                "  \"layers_pattern\": null,",
                "  \"layers_to_transform\": null,",
                "  \"lora_alpha\": 16,",
                "  \"lora_dropout\": 0.05,",
                "  \"modules_to_save\": [",
                "    \"classifier\"",
                "  ],",
                "  \"peft_type\": \"LORA\",",
                "  \"peft_version\": null,",
                "  \"r\": 4,",
                "  \"rank_pattern\": {},",
                "  \"revision\": null,",
                "  \"target_modules\": [",
                "    \"query\",",
                "    \"value\"",
                "  ],",
                "  \"task_type\": \"SEQ_CLS\",",
                "  \"use_dora\": false,",
                "  \"use_rslora\": false",
                "}");
        assertEquals(expected, c.toJson());
        LoraConfig back = (LoraConfig) PeftConfig.fromJson(c.toJson(), "test");
        assertEquals(c.toJson(), back.toJson());
    }

    @Test
    void readsAFilePythonPeftWrote() {
        // keys and values as PEFT 0.13 writes them (includes keys peft4j does not implement, at their defaults)
        String json = """
                {
                  "alpha_pattern": {"q_proj": 32},
                  "auto_mapping": null,
                  "base_model_name_or_path": "tiny-llama",
                  "bias": "lora_only",
                  "fan_in_fan_out": false,
                  "inference_mode": true,
                  "init_lora_weights": "gaussian",
                  "layer_replication": null,
                  "layers_pattern": "layers",
                  "layers_to_transform": 1,
                  "loftq_config": {},
                  "lora_alpha": 16,
                  "lora_bias": false,
                  "lora_dropout": 0.1,
                  "megatron_config": null,
                  "megatron_core": "megatron.core",
                  "modules_to_save": null,
                  "peft_type": "LORA",
                  "r": 8,
                  "rank_pattern": {"v_proj": 4, "o_proj": 2},
                  "revision": null,
                  "target_modules": ["v_proj", "q_proj"],
                  "task_type": "CAUSAL_LM",
                  "use_dora": false,
                  "use_rslora": true
                }""";
        LoraConfig c = (LoraConfig) PeftConfig.fromJson(json, "adapter_config.json");
        assertEquals(TargetModules.of("q_proj", "v_proj"), c.targetModules());
        assertEquals(List.of(1), c.layersToTransform());
        assertEquals(List.of("layers"), c.layersPattern());
        assertEquals("gaussian", c.initLoraWeights());
        assertEquals("lora_only", c.bias());
        assertTrue(c.useRslora());
        assertEquals(TaskType.CAUSAL_LM, c.taskType());
        assertEquals(4, c.rankFor("model.layers.1.self_attn.v_proj"));
        assertEquals(8, c.rankFor("model.layers.1.self_attn.q_proj"));
        assertEquals(32, c.alphaFor("model.layers.1.self_attn.q_proj"));
        assertEquals(16, c.alphaFor("model.layers.1.self_attn.v_proj"));
        assertTrue(c.unknownKeys().keySet().containsAll(List.of("auto_mapping", "layer_replication", "loftq_config", "lora_bias")));
    }

    @Test
    void unknownKeysAreIgnoredAndRemembered() {
        String json = "{\"peft_type\": \"LORA\", \"r\": 2, \"target_modules\": \"a.*\", \"shiny_new_key\": 3, \"other\": [1]}";
        // slf4j-simple writes to System.err at each call: capture the warning
        java.io.PrintStream err = System.err;
        java.io.ByteArrayOutputStream buf = new java.io.ByteArrayOutputStream();
        LoraConfig c;
        try {
            System.setErr(new java.io.PrintStream(buf, true, java.nio.charset.StandardCharsets.UTF_8));
            c = (LoraConfig) PeftConfig.fromJson(json, "cfg.json");
        } finally {
            System.setErr(err);
        }
        String log = buf.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(log.contains("WARN") && log.contains("cfg.json") && log.contains("shiny_new_key") && log.contains("other"), log);
        assertEquals(2, c.r());
        assertEquals(Map.of("shiny_new_key", 3, "other", List.of(1)), c.unknownKeys());
        assertTrue(c.targetModules().isRegex());
        assertFalse(c.toMap().containsKey("shiny_new_key"), "unknown keys are not written back");
    }

    @Test
    void unknownPeftTypeListsTheInstalledTypes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> PeftConfig.fromJson("{\"peft_type\": \"VERA\", \"r\": 4}", "/x/adapter_config.json"));
        assertTrue(e.getMessage().contains("'VERA'") && e.getMessage().contains("[LORA]")
                && e.getMessage().contains("/x/adapter_config.json"), e.getMessage());
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                () -> PeftConfig.fromJson("{\"r\": 4}", "cfg"));
        assertTrue(missing.getMessage().contains("peft_type"), missing.getMessage());
    }

    @Test
    void unsupportedFeaturesAndBadValuesAreRejected() {
        assertThrows(IllegalArgumentException.class,
                () -> PeftConfig.fromJson("{\"peft_type\": \"LORA\", \"lora_bias\": true}", "cfg"));
        assertThrows(IllegalArgumentException.class,
                () -> PeftConfig.fromJson("{\"peft_type\": \"LORA\", \"layer_replication\": [[0, 2]]}", "cfg"));
        IllegalArgumentException bias = assertThrows(IllegalArgumentException.class,
                () -> PeftConfig.fromJson("{\"peft_type\": \"LORA\", \"bias\": \"some\"}", "cfg.json"));
        assertTrue(bias.getMessage().contains("bias") && bias.getMessage().contains("cfg.json"), bias.getMessage());
        assertThrows(IllegalArgumentException.class, () -> LoraConfig.builder().r(0).build());
        assertThrows(IllegalArgumentException.class, () -> LoraConfig.builder().loraDropout(1.0).build());
        assertThrows(IllegalArgumentException.class, () -> LoraConfig.builder().initLoraWeights("loftq").build());
        assertThrows(IllegalArgumentException.class,
                () -> LoraConfig.builder().targetModulesRegex(".*q").layersToTransform(0).build());
        assertThrows(IllegalArgumentException.class, () -> PeftConfig.fromJson("{not json", "cfg"));
    }

    @Test
    void initLoraWeightsRoundTripsAsBooleanOrString() {
        for (String v : List.of("true", "false", "gaussian", "pissa", "pissa_niter_4", "olora")) {
            LoraConfig c = LoraConfig.builder().initLoraWeights(v).build();
            Object json = c.toMap().get("init_lora_weights");
            if (v.equals("true") || v.equals("false")) {
                assertInstanceOf(Boolean.class, json);
            } else {
                assertEquals(v, json);
            }
            assertEquals(v, ((LoraConfig) PeftConfig.fromJson(c.toJson(), "t")).initLoraWeights());
        }
    }

    @Test
    void copyKeepsTheSeed() {
        LoraConfig c = LoraConfig.builder().targetModules("q").seed(1234).build();
        assertEquals(1234, c.copy().seed());
        assertEquals(1234, c.toBuilder().r(2).build().seed());
    }

    /** A recipe's peft section: a wrong type or an unknown key is an error naming peft.<key>, never a silent default. */
    @Test
    void strictReadingNamesTheKeyOfEveryWrongTypeAndUnknownKey() throws Exception {
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        java.util.function.Function<String, String> err = text -> assertThrows(IllegalArgumentException.class,
                () -> PeftConfig.fromJsonStrict(json.readTree(text), "r.yaml", "peft")).getMessage();
        String base = "\"peft_type\": \"LORA\", \"target_modules\": [\"q\"]";
        assertEquals("r.yaml: peft.r must be an integer, got \"four\" (string)", err.apply("{" + base + ", \"r\": \"four\"}"));
        assertEquals("r.yaml: peft.r must be an integer, got 2.5 (number)", err.apply("{" + base + ", \"r\": 2.5}"));
        assertEquals("r.yaml: peft.lora_dropout must be a number, got null (null)",
                err.apply("{" + base + ", \"lora_dropout\": null}"));
        assertEquals("r.yaml: peft.lora_dropout must be a number, got true (boolean)",
                err.apply("{" + base + ", \"lora_dropout\": true}"));
        assertEquals("r.yaml: peft.use_rslora must be true or false, got 1 (number)",
                err.apply("{" + base + ", \"use_rslora\": 1}"));
        assertEquals("r.yaml: peft.bias must be a string, got 0 (number)", err.apply("{" + base + ", \"bias\": 0}"));
        assertTrue(err.apply("{" + base + ", \"task_type\": 0}").startsWith("r.yaml: peft.task_type must be one of ["),
                "an enum given as a number");
        assertTrue(err.apply("{\"peft_type\": \"LORA\", \"target_modules\": [\"q\", 3]}")
                .startsWith("r.yaml: peft.target_modules"), "a number in the module list");
        String unknown = err.apply("{" + base + ", \"lora_alfa\": 8}");
        assertTrue(unknown.startsWith("r.yaml: unknown key peft.lora_alfa for LORA (known: ") && unknown.contains("lora_alpha"),
                unknown);
        assertTrue(err.apply("{\"peft_type\": 3}").startsWith("r.yaml: peft.peft_type must be a string"));
        // what is right is read, numeric text included (YAML 1.1 leaves 1e-1 as text)
        LoraConfig ok = (LoraConfig) PeftConfig.fromJsonStrict(json.readTree(
                "{" + base + ", \"r\": 4, \"lora_alpha\": 8, \"lora_dropout\": \"1e-1\"}"), "r.yaml", "peft");
        assertEquals(4, ok.r());
        assertEquals(0.1, ok.loraDropout(), 1e-12);
        // the lenient reader of adapter_config.json files still warns about unknown keys only
        assertEquals(4, ((LoraConfig) PeftConfig.fromJson("{" + base + ", \"r\": 4, \"lora_alfa\": 8}", "a.json")).r());
    }
}
