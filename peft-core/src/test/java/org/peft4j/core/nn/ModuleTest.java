package org.peft4j.core.nn;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Module tree features on a small two-layer model built from the nn layers. */
class ModuleTest {

    /** A tiny BERT-like block: attention.self (query/key/value), attention.output.dense + LayerNorm, dropout. */
    static final class Block extends Module implements UnaryModule {
        Block(int hidden, Rng rng) {
            Module attention = registerModule("attention", new Module() { });
            attention.registerModule("self", MultiHeadAttention.builder(hidden, 2).projections("query", "key", "value")
                    .output(null).initRng(rng).build());
            Module output = attention.registerModule("output", new Module() { });
            output.registerModule("dense", new Linear(hidden, hidden, true, rng));
            output.registerModule("LayerNorm", new LayerNorm(hidden, 1e-12));
            registerModule("dropout", new Dropout(0.5, rng.fork()));
        }

        @Override
        public Tensor forward(Tensor x) {
            Module attention = child("attention");
            Tensor ctx = ((MultiHeadAttention) attention.child("self")).forward(x, null);
            Module out = attention.child("output");
            Tensor h = out.child("dense", UnaryModule.class).forward(ctx);
            h = child("dropout", UnaryModule.class).forward(h);
            return out.child("LayerNorm", UnaryModule.class).forward(org.peft4j.core.tensor.Ops.add(h, x));
        }
    }

    static final class Model extends Module implements UnaryModule {
        Model(int hidden, int layers, Rng rng) {
            ModuleList layer = registerModule("layer", new ModuleList());
            for (int i = 0; i < layers; i++) {
                layer.add(new Block(hidden, rng));
            }
        }

        @Override
        public Tensor forward(Tensor x) {
            ModuleList layers = child("layer", ModuleList.class);
            for (int i = 0; i < layers.size(); i++) {
                x = layers.get(i, UnaryModule.class).forward(x);
            }
            return x;
        }
    }

    private static Model model() {
        return new Model(4, 2, new Rng(1));
    }

    @Test
    void namedParametersUseDottedHuggingFaceNames() {
        Model m = model();
        List<String> names = List.copyOf(m.namedParameters().keySet());
        assertEquals(2 * 10, names.size());
        assertEquals("layer.0.attention.self.query.weight", names.get(0));
        assertTrue(names.contains("layer.1.attention.output.LayerNorm.bias"));
        assertTrue(names.contains("layer.1.attention.self.value.bias"));
        assertEquals(2 * (3 * (16 + 4) + 16 + 4 + 8), m.numParameters());
    }

    @Test
    void namedModulesAndGet() {
        Model m = model();
        Map<String, Module> mods = m.namedModules();
        assertSame(m, mods.get(""));
        assertTrue(mods.containsKey("layer.0.attention.self.key"));
        assertTrue(mods.get("layer.1.attention.self") instanceof MultiHeadAttention);
        assertSame(mods.get("layer.1.attention.output.dense"), m.get("layer.1.attention.output.dense"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.get("layer.0.attention.nope"));
        assertTrue(e.getMessage().contains("nope") && e.getMessage().contains("layer.0.attention"), e.getMessage());
    }

    @Test
    void replacingAChildChangesTheParentsForward() {
        Model m = model();
        m.eval();
        Tensor x = Tensor.constant(Nd4j.rand(DataType.FLOAT, 1, 3, 4));
        INDArray before = m.forward(x).value().dup();
        Linear zero = new Linear(Nd4j.zeros(DataType.FLOAT, 4, 4), Nd4j.zeros(DataType.FLOAT, 4), false);
        Module old = m.replace("layer.1.attention.output.dense", zero);
        assertTrue(old instanceof Linear);
        assertSame(zero, m.get("layer.1.attention.output.dense"));
        INDArray after = m.forward(x).value();
        assertTrue(NnTestSupport.maxAbsDiff(before, after) > 1e-3);
        assertFalse(zero.isTraining(), "replacement takes the parent's mode");
        m.replace("layer.1.attention.output.dense", old);
        assertEquals(0.0, NnTestSupport.maxAbsDiff(before, m.forward(x).value()), 0.0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> m.replace("layer.1.attention.output.missing", zero));
        assertTrue(e.getMessage().contains("'layer.1.attention.output.missing'") && e.getMessage().contains("'missing'")
                && e.getMessage().contains("[dense, LayerNorm]"), e.getMessage());
        // a missing parent names the first segment that does not exist
        e = assertThrows(IllegalArgumentException.class, () -> m.replace("layer.7.attention.output.dense", zero));
        assertTrue(e.getMessage().contains("has no child '7'") && e.getMessage().contains("[0, 1]"), e.getMessage());
        // null replacements and the root are rejected without touching the tree
        e = assertThrows(IllegalArgumentException.class, () -> m.replace("layer.1.attention.output.dense", null));
        assertTrue(e.getMessage().contains("layer.1.attention.output.dense") && e.getMessage().contains("null"), e.getMessage());
        assertSame(old, m.get("layer.1.attention.output.dense"));
        assertThrows(IllegalArgumentException.class, () -> m.replace("", zero));
        assertEquals(0.0, NnTestSupport.maxAbsDiff(before, m.forward(x).value()), 0.0);
    }

    @Test
    void trainEvalPropagatesAndDropoutIsIdentityInEval() {
        Model m = model();
        assertTrue(m.get("layer.1.dropout").isTraining());
        Tensor x = Tensor.constant(Nd4j.rand(DataType.FLOAT, 2, 3, 4));
        INDArray t1 = m.forward(x).value();
        INDArray t2 = m.forward(x).value();
        assertTrue(NnTestSupport.maxAbsDiff(t1, t2) > 1e-4, "fresh dropout masks in training");
        m.eval();
        for (Module sub : m.namedModules().values()) {
            assertFalse(sub.isTraining());
        }
        assertEquals(0.0, NnTestSupport.maxAbsDiff(m.forward(x).value(), m.forward(x).value()), 0.0);
        Tensor h = Tensor.constant(Nd4j.rand(DataType.FLOAT, 2, 4));
        assertSame(h, ((Dropout) m.get("layer.0.dropout")).forward(h));
        m.train();
        assertTrue(m.get("layer.0.attention.self.query").isTraining());
    }

    @Test
    void freezeAndUnfreeze() {
        Model m = model();
        m.freeze();
        assertEquals(0, m.numTrainableParameters());
        assertTrue(m.namedTrainableParameters().isEmpty());
        m.get("layer.0.attention.self.query").unfreeze();
        assertEquals(List.of("layer.0.attention.self.query.weight", "layer.0.attention.self.query.bias"),
                List.copyOf(m.namedTrainableParameters().keySet()));
        Tensor x = Tensor.variable(Nd4j.rand(DataType.FLOAT, 1, 2, 4));
        m.eval();
        m.forward(x).backward(Nd4j.ones(DataType.FLOAT, 1, 2, 4));
        assertNotNull(m.namedParameters().get("layer.0.attention.self.query.weight").grad());
        assertNull(m.namedParameters().get("layer.0.attention.self.key.weight").grad());
        assertNull(m.namedParameters().get("layer.1.attention.output.dense.weight").grad());
        assertNotNull(x.grad());
        m.unfreeze();
        assertEquals(m.numParameters(), m.numTrainableParameters());
    }

    @Test
    void stateDictRoundTripAndStrictErrors() {
        Model a = model();
        Model b = new Model(4, 2, new Rng(99));
        Map<String, INDArray> sd = a.stateDict();
        assertEquals(a.namedParameters().keySet(), sd.keySet());
        Module.LoadResult r = b.loadStateDict(sd, true);
        assertTrue(r.missingKeys().isEmpty() && r.unexpectedKeys().isEmpty());
        a.eval();
        b.eval();
        Tensor x = Tensor.constant(Nd4j.rand(DataType.FLOAT, 1, 3, 4));
        assertEquals(0.0, NnTestSupport.maxAbsDiff(a.forward(x).value(), b.forward(x).value()), 0.0);
        // values are copied, not shared
        b.namedParameters().get("layer.0.attention.self.query.bias").value().addi(1.0);
        assertTrue(NnTestSupport.maxAbsDiff(a.forward(x).value(), b.forward(x).value()) > 0);

        Map<String, INDArray> bad = new LinkedHashMap<>(sd);
        bad.remove("layer.1.attention.self.key.bias");
        bad.put("layer.1.attention.self.key.lora_A", Nd4j.zeros(2, 4));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.loadStateDict(bad, true));
        assertTrue(e.getMessage().contains("missing keys [layer.1.attention.self.key.bias]"), e.getMessage());
        assertTrue(e.getMessage().contains("unexpected keys [layer.1.attention.self.key.lora_A]"), e.getMessage());
        Module.LoadResult lenient = b.loadStateDict(bad, false);
        assertEquals(List.of("layer.1.attention.self.key.bias"), lenient.missingKeys());
        assertEquals(List.of("layer.1.attention.self.key.lora_A"), lenient.unexpectedKeys());

        Map<String, INDArray> wrongShape = new LinkedHashMap<>(sd);
        wrongShape.put("layer.0.attention.output.dense.weight", Nd4j.zeros(4, 5));
        e = assertThrows(IllegalArgumentException.class, () -> b.loadStateDict(wrongShape, true));
        assertTrue(e.getMessage().contains("layer.0.attention.output.dense.weight")
                && e.getMessage().contains("[4, 4]") && e.getMessage().contains("[4, 5]"), e.getMessage());
    }
}
