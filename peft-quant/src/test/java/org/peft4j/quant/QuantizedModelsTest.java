package org.peft4j.quant;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.CheckpointException;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.model.decoder.ConfigFields;
import org.peft4j.core.model.gpt2.Gpt2Config;
import org.peft4j.core.model.gpt2.Gpt2LMHeadModel;
import org.peft4j.core.model.llama.LlamaForCausalLM;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Quantized folders: layout, round trips, quantize-while-loading, the quantize command, bad files. */
class QuantizedModelsTest {

    static INDArray logits(LlamaForCausalLM m, INDArray ids) {
        return QLoraTest.logits(m, ids);
    }

    static void assertSameQuantizedLayers(Module a, Module b) {
        int n = 0;
        for (Map.Entry<String, Module> e : a.namedModules().entrySet()) {
            if (e.getValue() instanceof QuantizedLinear qa) {
                Module other = b.get(e.getKey());
                assertTrue(other instanceof QuantizedLinear, e.getKey() + " is quantized in both");
                QuantizedLinear qb = (QuantizedLinear) other;
                assertArrayEquals(qa.quantizedWeight().dequantize(), qb.quantizedWeight().dequantize(), 0f, e.getKey());
                n++;
            }
        }
        assertTrue(n > 0);
    }

    @Test
    void aSavedNf4FolderUsesBitsandbytesKeysAndLoadsBackExactly(@TempDir Path tmp) throws Exception {
        LlamaForCausalLM m = Quantizer.quantize(TinyModels.llama(11), QuantConfig.nf4());
        Path dir = tmp.resolve("q");
        QuantizedModels.save(m, dir);
        JsonNode cfg = HfFolder.readConfig(dir);
        JsonNode qc = cfg.get("quantization_config");
        assertEquals("bitsandbytes", qc.get("quant_method").asText());
        assertTrue(qc.get("load_in_4bit").asBoolean());
        assertEquals("nf4", qc.get("bnb_4bit_quant_type").asText());
        assertTrue(qc.get("bnb_4bit_use_double_quant").asBoolean());
        assertEquals(List.of("lm_head"), List.of(qc.get("llm_int8_skip_modules").get(0).asText()));
        Map<String, INDArray> t = SafeTensors.load(dir.resolve(HfFolder.WEIGHTS_FILE), false);
        String p = "model.layers.1.mlp.down_proj.weight";
        assertEquals(DataType.UINT8, t.get(p).dataType());
        assertArrayEquals(new long[]{64 * 160 / 2, 1}, t.get(p).shape());
        assertEquals(DataType.UINT8, t.get(p + ".absmax").dataType());
        assertArrayEquals(new long[]{64 * 160 / 64}, t.get(p + ".absmax").shape());
        assertArrayEquals(new long[]{16}, t.get(p + ".quant_map").shape());
        assertArrayEquals(new long[]{1}, t.get(p + ".nested_absmax").shape());
        assertArrayEquals(new long[]{256}, t.get(p + ".nested_quant_map").shape());
        byte[] js = NativeArrays.bytes(t.get(p + ".quant_state.bitsandbytes__nf4"));
        JsonNode state = JsonFiles.mapper().readTree(js);
        assertEquals("nf4", state.get("quant_type").asText());
        assertEquals(64, state.get("blocksize").asInt());
        assertEquals("float32", state.get("dtype").asText());
        assertEquals(64, state.get("shape").get(0).asInt());
        assertEquals(160, state.get("shape").get(1).asInt());
        assertEquals(256, state.get("nested_blocksize").asInt());
        assertTrue(state.has("nested_offset"));
        assertEquals(DataType.FLOAT, t.get("lm_head.weight").dataType(), "the head stays fp32");
        assertEquals(DataType.FLOAT, t.get("model.embed_tokens.weight").dataType());

        Module back = QuantizedModels.load(dir);
        assertTrue(back instanceof LlamaForCausalLM);
        assertSameQuantizedLayers(m, back);
        INDArray ids = TinyModels.ids(2, 9, 96, 4);
        assertEquals(0.0, logits((LlamaForCausalLM) back, ids).sub(logits(m, ids)).amaxNumber().doubleValue(), 0.0);
    }

    @Test
    void quantizingWhileLoadingEqualsLoadingThenQuantizing(@TempDir Path tmp) throws Exception {
        Path fp32 = tmp.resolve("fp32");
        TinyModels.savedLlama(fp32, 12, 60_000);           // sharded: several files + index
        assertTrue(Files.exists(fp32.resolve(HfFolder.WEIGHTS_INDEX_FILE)));
        for (QuantConfig c : List.of(QuantConfig.nf4(), QuantConfig.builder().type(QuantType.FP4).blockSize(128).doubleQuant(false).build(),
                QuantConfig.builder().type(QuantType.INT8).int8Threshold(0.12f).build())) {
            LlamaForCausalLM streamed = QuantizedModels.loadLlama(fp32, c);
            LlamaForCausalLM after = Quantizer.quantize(LlamaForCausalLM.load(fp32), c);
            assertSameQuantizedLayers(after, streamed);
            assertEquals(14, Quantizer.stats(streamed).layers());
            INDArray ids = TinyModels.ids(1, 8, 96, 7);
            assertEquals(0.0, logits(streamed, ids).sub(logits(after, ids)).amaxNumber().doubleValue(), 0.0, c.toString());
            // and the saved folder of either loads back the same
            Path out = tmp.resolve("out-" + c.type().id());
            QuantizedModels.save(streamed, out);
            LlamaForCausalLM back = (LlamaForCausalLM) QuantizedModels.load(out);
            assertEquals(0.0, logits(back, ids).sub(logits(after, ids)).amaxNumber().doubleValue(), 0.0, c.toString());
        }
    }

    @Test
    void int8FolderKeepsOutlierColumns(@TempDir Path tmp) throws Exception {
        LlamaForCausalLM m = TinyModels.llama(13);
        Linear up = (Linear) m.get("model.layers.0.mlp.up_proj");
        up.weight().value().putScalar(5, 7, 9.0f);      // an outlier in column 7
        Quantizer.quantize(m, QuantConfig.int8());
        QuantizedInt8 w = (QuantizedInt8) ((QuantizedLinear) m.get("model.layers.0.mlp.up_proj")).quantizedWeight();
        assertArrayEquals(new int[]{7}, w.outlierColumns());
        assertEquals(9.0f, w.dequantize()[5 * 64 + 7], 0f, "outlier kept exactly");
        Path dir = tmp.resolve("int8");
        QuantizedModels.save(m, dir);
        Map<String, INDArray> t = SafeTensors.load(dir.resolve(HfFolder.WEIGHTS_FILE), false);
        assertEquals(DataType.INT8, t.get("model.layers.0.mlp.up_proj.weight").dataType());
        assertArrayEquals(new long[]{160}, t.get("model.layers.0.mlp.up_proj.SCB").shape());
        assertTrue(t.containsKey("model.layers.0.mlp.up_proj.weight.outlier_cols"));
        assertTrue(HfFolder.readConfig(dir).get("quantization_config").get("load_in_8bit").asBoolean());
        LlamaForCausalLM back = (LlamaForCausalLM) QuantizedModels.load(dir);
        assertSameQuantizedLayers(m, back);
    }

    @Test
    void gpt2AndBertFoldersRoundTrip(@TempDir Path tmp) throws Exception {
        ObjectNode g = JsonFiles.mapper().createObjectNode();
        g.put("model_type", "gpt2").put("vocab_size", 80).put("n_positions", 32).put("n_embd", 64).put("n_layer", 2)
                .put("n_head", 4);
        Gpt2LMHeadModel gpt2 = Gpt2LMHeadModel.random(Gpt2Config.fromFields(ConfigFields.of(g, "test")), 3);
        gpt2.eval();
        Path gdir = tmp.resolve("gpt2");
        gpt2.save(gdir);
        Gpt2LMHeadModel gq = (Gpt2LMHeadModel) QuantizedModels.load(gdir, QuantConfig.fp4());
        assertEquals(8, Quantizer.stats(gq).layers(), "c_attn, c_proj, c_fc, mlp.c_proj per block; the tied head stays");
        Path gq2 = tmp.resolve("gpt2-q");
        QuantizedModels.save(gq, gq2);
        Gpt2LMHeadModel gback = (Gpt2LMHeadModel) QuantizedModels.load(gq2);
        INDArray ids = TinyModels.ids(1, 6, 80, 1);
        try (NoGrad ignored = NoGrad.enter()) {
            assertEquals(0.0, gback.forward(ids, null).value().sub(gq.forward(ids, null).value()).amaxNumber().doubleValue(), 0.0);
        }

        BertConfig bc = BertConfig.builder().vocabSize(90).hiddenSize(64).numHiddenLayers(2).numAttentionHeads(4)
                .intermediateSize(128).maxPositionEmbeddings(32).numLabels(3).classifierPooling(BertConfig.Pooling.MEAN).build();
        BertForSequenceClassification bert = new BertForSequenceClassification(bc, new Rng(5));
        bert.eval();
        Path bfp32 = tmp.resolve("bert-fp32");
        bert.save(bfp32);
        Module loadedQuantized = QuantizedModels.load(bfp32, QuantConfig.nf4());
        assertTrue(loadedQuantized instanceof BertForSequenceClassification);
        Quantizer.quantize(bert, QuantConfig.nf4());
        assertSameQuantizedLayers(bert, loadedQuantized);
        assertTrue(bert.get("classifier") instanceof Linear, "the classification head stays fp32");
        Path bdir = tmp.resolve("bert-q");
        QuantizedModels.save(bert, bdir);
        BertForSequenceClassification bback = (BertForSequenceClassification) QuantizedModels.load(bdir);
        assertSameQuantizedLayers(bert, bback);
        INDArray bids = TinyModels.ids(2, 5, 90, 2);
        INDArray mask = Nd4j.ones(DataType.INT64, 2, 5);
        try (NoGrad ignored = NoGrad.enter()) {
            INDArray a = bert.forward(bids, mask, null).value();
            INDArray b = bback.forward(bids, mask, null).value();
            assertEquals(0.0, a.sub(b).amaxNumber().doubleValue(), 0.0);
        }
    }

    @Test
    void quantizedFoldersLoadThroughTheFamilyRegistry(@TempDir Path tmp) throws Exception {
        // GPT-2: the family's mask buffers are skipped, any other extra key is named with its file
        ObjectNode g = JsonFiles.mapper().createObjectNode();
        g.put("model_type", "gpt2").put("vocab_size", 80).put("n_positions", 32).put("n_embd", 64).put("n_layer", 2)
                .put("n_head", 4);
        Gpt2LMHeadModel gpt2 = Quantizer.quantize(Gpt2LMHeadModel.random(Gpt2Config.fromFields(ConfigFields.of(g, "test")), 4),
                QuantConfig.nf4());
        Path gdir = tmp.resolve("gpt2-q");
        QuantizedModels.save(gpt2, gdir);
        tamper(gdir, t -> {
            t.put("transformer.h.0.attn.bias", Nd4j.ones(DataType.FLOAT, 1, 1, 32, 32));
            t.put("h.1.attn.masked_bias", Nd4j.scalar(-1e4f));
        });
        Module gback = QuantizedModels.load(gdir);
        assertTrue(gback instanceof Gpt2LMHeadModel);
        assertSameQuantizedLayers(gpt2, gback);
        tamper(gdir, t -> t.put("transformer.h.0.attn.scale", Nd4j.ones(DataType.FLOAT, 1)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> QuantizedModels.load(gdir));
        assertTrue(e.getMessage().contains("unexpected keys [transformer.h.0.attn.scale] (in model.safetensors)")
                && e.getMessage().contains(gdir.toString()), e.getMessage());

        // BERT: both buffers the family ignores (position_ids and token_type_ids), prefixed or not
        BertConfig bc = BertConfig.builder().vocabSize(90).hiddenSize(64).numHiddenLayers(1).numAttentionHeads(4)
                .intermediateSize(128).maxPositionEmbeddings(32).build();
        BertModel bert = Quantizer.quantize(new BertModel(bc, true, new Rng(6)), QuantConfig.nf4());
        Path bdir = tmp.resolve("bert-q");
        QuantizedModels.save(bert, bdir);
        tamper(bdir, t -> {
            t.put("embeddings.position_ids", Nd4j.zeros(DataType.INT64, 1, 32));
            t.put("embeddings.token_type_ids", Nd4j.zeros(DataType.INT64, 1, 32));
        });
        Module bback = QuantizedModels.load(bdir);
        assertTrue(bback instanceof BertModel);
        assertSameQuantizedLayers(bert, bback);

        // an unknown model_type names the config file and the known types
        Path unknown = tmp.resolve("unknown");
        TinyModels.savedLlama(unknown, 1, Long.MAX_VALUE);
        ObjectNode cfg = JsonFiles.readObject(unknown.resolve(HfFolder.CONFIG_FILE));
        cfg.put("model_type", "falcon");
        JsonFiles.write(unknown.resolve(HfFolder.CONFIG_FILE), cfg);
        e = assertThrows(IllegalArgumentException.class, () -> QuantizedModels.load(unknown, QuantConfig.nf4()));
        assertTrue(e.getMessage().contains("unknown model_type 'falcon'") && e.getMessage().contains(HfFolder.CONFIG_FILE)
                && e.getMessage().contains("bert, gpt2, llama, mistral, mt5, qwen2, t5"), e.getMessage());
    }

    /** Rewrites the single weights file of {@code dir} with {@code edit} applied. */
    static void tamper(Path dir, java.util.function.Consumer<Map<String, INDArray>> edit) throws Exception {
        Path f = dir.resolve(HfFolder.WEIGHTS_FILE);
        Map<String, INDArray> t = new LinkedHashMap<>(SafeTensors.load(f, false));
        edit.accept(t);
        SafeTensors.write(f, t, Map.of("format", "pt"));
    }

    @Test
    void scalesThatDoNotMatchTheCodesAreAClearError(@TempDir Path tmp) throws Exception {
        LlamaForCausalLM m = Quantizer.quantize(TinyModels.llama(14), QuantConfig.builder().doubleQuant(false).build());
        String p = "model.layers.0.self_attn.q_proj.weight";
        // too few scales
        Path a = tmp.resolve("a");
        QuantizedModels.save(m, a);
        tamper(a, t -> t.put(p + ".absmax", t.get(p + ".absmax").get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 10)).dup()));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> QuantizedModels.load(a));
        assertTrue(e.getMessage().contains("model.layers.0.self_attn.q_proj") && e.getMessage().contains("do not match"), e.getMessage());
        // packed codes of the wrong size for the shape in quant_state
        Path b = tmp.resolve("b");
        QuantizedModels.save(m, b);
        tamper(b, t -> t.put(p, NativeArrays.uint8(new byte[100], 100, 1)));
        e = assertThrows(IllegalArgumentException.class, () -> QuantizedModels.load(b));
        assertTrue(e.getMessage().contains("packed weight has 100 bytes"), e.getMessage());
        // statistics missing altogether
        Path c = tmp.resolve("c");
        QuantizedModels.save(m, c);
        tamper(c, t -> t.keySet().removeIf(k -> k.startsWith(p + ".")));
        e = assertThrows(IllegalArgumentException.class, () -> QuantizedModels.load(c));
        assertTrue(e.getMessage().contains("statistics") && e.getMessage().contains(p), e.getMessage());
        // int8: SCB of the wrong length
        LlamaForCausalLM m8 = Quantizer.quantize(TinyModels.llama(14), QuantConfig.int8());
        Path d = tmp.resolve("d");
        QuantizedModels.save(m8, d);
        tamper(d, t -> t.put("model.layers.1.mlp.gate_proj.SCB", Nd4j.zeros(DataType.FLOAT, 3)));
        e = assertThrows(IllegalArgumentException.class, () -> QuantizedModels.load(d));
        assertTrue(e.getMessage().contains("SCB has 3 row scales") && e.getMessage().contains("gate_proj"), e.getMessage());
        // an fp32 folder is not a quantized one
        Path f = tmp.resolve("f");
        TinyModels.savedLlama(f, 1, Long.MAX_VALUE);
        e = assertThrows(IllegalArgumentException.class, () -> QuantizedModels.load(f));
        assertTrue(e.getMessage().contains("quantization_config"), e.getMessage());
    }

    @Test
    void quantizeCommandWritesAFolderThatLoads(@TempDir Path tmp) throws Exception {
        Path fp32 = tmp.resolve("model");
        LlamaForCausalLM orig = TinyModels.savedLlama(fp32, 15, Long.MAX_VALUE);
        Files.writeString(fp32.resolve("tokenizer.json"), "{}");
        Path out = tmp.resolve("nf4");
        QuantizeCommand.Summary s = QuantizeCommand.run(fp32, out, "nf4", 64, true);
        assertEquals(14, s.quantizedLayers());
        // tiny layers: the per-layer code tables (16 + 256 floats) weigh in; see the storage test for real sizes
        assertTrue(s.bytesPerParameter() < 0.75, s.describe());
        assertTrue(Files.exists(out.resolve("tokenizer.json")), "side files copied");
        LlamaForCausalLM q = (LlamaForCausalLM) QuantizedModels.load(out);
        LlamaForCausalLM expected = Quantizer.quantize(orig, QuantConfig.nf4());
        INDArray ids = TinyModels.ids(1, 5, 96, 9);
        assertEquals(0.0, logits(q, ids).sub(logits(expected, ids)).amaxNumber().doubleValue(), 0.0);

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> QuantizeCommand.run(fp32, out, "nf4", 48, true));
        assertTrue(e.getMessage().contains("block size 48"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> QuantizeCommand.run(fp32, out, "q4", 64, true));
        assertTrue(e.getMessage().contains("'q4'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> QuantizeCommand.run(fp32, fp32, "nf4", 64, true));
        assertTrue(e.getMessage().contains("--out must differ"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> QuantizeCommand.run(out, tmp.resolve("x"), "nf4", 64, true));
        assertTrue(e.getMessage().contains("already quantized"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> QuantizeCommand.run(tmp.resolve("none"), out, "nf4", 64, true));
        assertTrue(e.getMessage().contains("no such folder"), e.getMessage());
        assertFalse(Files.exists(tmp.resolve("x")));
    }
}
