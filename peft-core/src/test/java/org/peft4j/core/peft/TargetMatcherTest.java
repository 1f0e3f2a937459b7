package org.peft4j.core.peft;

import org.junit.jupiter.api.Test;
import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.LayerNorm;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.tensor.Rng;

import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** PEFT's target-module rules (check_target_module_exists, _maybe_include_all_linear_layers). */
class TargetMatcherTest {

    static final class Node extends Module {
        <M extends Module> M add(String name, M m) {
            return registerModule(name, m);
        }
    }

    /** model.layers.{0,1,2}.self_attn.{q_proj,k_proj}, model.layers.N.mlp.down_proj, model.embed_tokens, model.norm, classifier, lm_head. */
    static Node model(boolean withLmHead) {
        Rng rng = new Rng(1);
        Node root = new Node();
        Node model = root.add("model", new Node());
        model.add("embed_tokens", new Embedding(10, 4, rng));
        Node layers = model.add("layers", new Node());
        for (int i = 0; i < 3; i++) {
            Node layer = layers.add(Integer.toString(i), new Node());
            Node attn = layer.add("self_attn", new Node());
            attn.add("q_proj", new Linear(4, 4, false, rng));
            attn.add("k_proj", new Linear(4, 4, false, rng));
            layer.add("mlp", new Node()).add("down_proj", new Linear(4, 4, false, rng));
        }
        model.add("norm", new LayerNorm(4, 1e-5));
        root.add("classifier", new Linear(4, 2, true, rng));
        if (withLmHead) {
            root.add("lm_head", new Linear(4, 10, false, rng));
        }
        return root;
    }

    private static TargetMatcher.Spec spec(TargetModules t) {
        return new TargetMatcher.Spec(t, null, null, null, null, null);
    }

    private static TargetMatcher.Spec layers(TargetModules t, List<Integer> idx, List<String> pattern) {
        return new TargetMatcher.Spec(t, null, idx, pattern, null, null);
    }

    @Test
    void listEntriesMatchFullNameOrDotSuffix() {
        TargetMatcher.Spec s = spec(TargetModules.of("q_proj", "mlp.down_proj"));
        assertTrue(TargetMatcher.matches(s, "model.layers.0.self_attn.q_proj"));
        assertTrue(TargetMatcher.matches(s, "model.layers.2.mlp.down_proj"));
        assertTrue(TargetMatcher.matches(s, "q_proj"), "the full name itself");
        assertFalse(TargetMatcher.matches(s, "model.layers.0.self_attn.xq_proj"), "suffix must start at a dot");
        assertFalse(TargetMatcher.matches(s, "model.layers.0.self_attn.q_proj.base_layer"));
        assertEquals(List.of("model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj", "model.layers.1.self_attn.q_proj",
                "model.layers.1.mlp.down_proj", "model.layers.2.self_attn.q_proj", "model.layers.2.mlp.down_proj"),
                TargetMatcher.findTargets(model(true), s));
    }

    @Test
    void aStringIsARegexThatMustMatchTheWholeName() {
        TargetMatcher.Spec s = spec(TargetModules.regex(".*\\.(q|k)_proj"));
        assertTrue(TargetMatcher.matches(s, "model.layers.1.self_attn.k_proj"));
        assertFalse(TargetMatcher.matches(spec(TargetModules.regex("q_proj")), "model.layers.1.self_attn.q_proj"),
                "re.fullmatch, not search");
        assertEquals(6, TargetMatcher.findTargets(model(true), s).size());
        assertEquals(List.of("model.layers.1.self_attn.q_proj"),
                TargetMatcher.findTargets(model(true), spec(TargetModules.regex("model\\.layers\\.1\\..*q_proj"))));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TargetMatcher.matches(spec(TargetModules.regex("(")), "x"));
        assertTrue(e.getMessage().contains("'('"), e.getMessage());
    }

    @Test
    void allLinearExcludesTheOutputHead() {
        Set<String> lm = TargetMatcher.allLinearNames(model(true), TaskType.CAUSAL_LM);
        assertTrue(lm.contains("classifier"), "classifier is only excluded for SEQ_CLS, as in PEFT");
        assertFalse(lm.contains("lm_head"));
        assertEquals(10, lm.size());
        Set<String> cls = TargetMatcher.allLinearNames(model(false), TaskType.SEQ_CLS);
        assertFalse(cls.contains("classifier"));
        assertEquals(9, cls.size());
        assertTrue(TargetMatcher.allLinearNames(model(false), null).contains("classifier"));
        List<String> found = TargetMatcher.findTargets(model(true), new TargetMatcher.Spec(TargetModules.allLinear(), null, null,
                null, null, TaskType.CAUSAL_LM));
        assertFalse(found.contains("lm_head"));
        assertFalse(found.contains("model.embed_tokens"));
        assertFalse(found.contains("model.norm"));
        assertEquals(10, found.size());
    }

    @Test
    void layersToTransformFiltersByLayerIndex() {
        assertEquals(List.of("model.layers.1.self_attn.q_proj"),
                TargetMatcher.findTargets(model(true), layers(TargetModules.of("q_proj"), List.of(1), null)));
        assertEquals(List.of("model.layers.0.self_attn.q_proj", "model.layers.2.self_attn.q_proj"),
                TargetMatcher.findTargets(model(true), layers(TargetModules.of("q_proj"), List.of(0, 2), List.of("layers"))));
        assertThrows(IllegalArgumentException.class,
                () -> TargetMatcher.findTargets(model(true), layers(TargetModules.of("q_proj"), List.of(0), List.of("blocks"))),
                "no layer named 'blocks' → nothing matches");
        // an exact full name bypasses the layer filter (PEFT's `key in target_modules` branch)
        assertTrue(TargetMatcher.matches(layers(TargetModules.of("model.layers.2.self_attn.q_proj"), List.of(0), null),
                "model.layers.2.self_attn.q_proj"));
        assertEquals(1, TargetMatcher.layerIndex("model.layers.1.self_attn.q_proj", null));
        assertNull(TargetMatcher.layerIndex("layers.1.q_proj", null), "PEFT's pattern needs a prefix before the layer list");
    }

    @Test
    void modulesToSaveAndExcludeModulesAreNeverTargets() {
        TargetMatcher.Spec s = new TargetMatcher.Spec(TargetModules.regex(".*proj|classifier"), TargetModules.of("k_proj"), null, null,
                List.of("classifier"), null);
        List<String> found = TargetMatcher.findTargets(model(true), s);
        assertFalse(found.contains("classifier"));
        assertTrue(found.stream().noneMatch(k -> k.endsWith("k_proj")));
        assertEquals(6, found.size());
    }

    @Test
    void noMatchNamesTheListAndSomeExistingModules() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TargetMatcher.findTargets(model(true), spec(TargetModules.of("query", "value"))));
        String msg = e.getMessage();
        assertTrue(msg.contains("[query, value]") && msg.contains("matched no module"), msg);
        assertTrue(msg.contains("q_proj") && msg.contains("down_proj"), msg);
    }

    @Test
    void pythonJsonMatchesJsonDumpsIndent2SortKeys() {
        java.util.Map<String, Object> m = new java.util.LinkedHashMap<>();
        m.put("b", List.of(1, "x"));
        m.put("a", 1e-5);
        m.put("c", java.util.Map.of());
        m.put("d", List.of());
        m.put("e", "é\"\n");
        m.put("f", 3.0);
        m.put("g", null);
        m.put("h", 1.5e16);
        assertEquals("{\n  \"a\": 1e-05,\n  \"b\": [\n    1,\n    \"x\"\n  ],\n  \"c\": {},\n  \"d\": [],\n"
                + "  \"e\": \"\\u00e9\\\"\\n\",\n  \"f\": 3.0,\n  \"g\": null,\n  \"h\": 1.5e+16\n}", PythonJson.write(m));
        assertEquals("0.1", PythonJson.pythonFloat(0.1));
        assertEquals("123456.789", PythonJson.pythonFloat(123456.789));
        assertEquals("0.0001", PythonJson.pythonFloat(1e-4));
        assertEquals("-2.5e-07", PythonJson.pythonFloat(-2.5e-7));
        assertEquals("1e+16", PythonJson.pythonFloat(1e16));
        assertEquals("1234567890123456.0", PythonJson.pythonFloat(1234567890123456.0));
    }
}
