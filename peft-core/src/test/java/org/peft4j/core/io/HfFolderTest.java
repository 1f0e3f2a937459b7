package org.peft4j.core.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HfFolderTest {
    @TempDir
    Path tmp;

    /** Five tensors of 64, 16, 128, 4 and 2 bytes (F32 and one BF16), seeded. */
    private static Map<String, INDArray> weights() {
        Nd4j.getRandom().setSeed(123);
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.put("embeddings.weight", Nd4j.rand(DataType.FLOAT, 4, 4));
        m.put("layer.0.bias", Nd4j.rand(DataType.FLOAT, 4));
        m.put("layer.0.weight", Nd4j.rand(DataType.FLOAT, 4, 8));
        m.put("layer.1.scale", Nd4j.scalar(0.5f));
        m.put("head.weight", Nd4j.createFromArray(1.5f).castTo(DataType.BFLOAT16));
        return m;
    }

    private static void assertSameTensors(Map<String, INDArray> want, Map<String, INDArray> got) {
        assertEquals(new TreeMap<>(want).keySet(), new TreeMap<>(got).keySet());
        for (String k : want.keySet()) {
            INDArray w = want.get(k);
            INDArray g = got.get(k);
            assertEquals(w.dataType(), g.dataType(), k);
            assertArrayEquals(w.shape(), g.shape(), k);
            assertArrayEquals(IoTestSupport.rawBytes(w), IoTestSupport.rawBytes(g), k);
        }
    }

    @Test
    void configRoundTripInPythonLayout() throws IOException {
        ObjectNode cfg = JsonFiles.mapper().createObjectNode();
        cfg.put("model_type", "bert").put("hidden_size", 384).put("layer_norm_eps", 0.5)
                .put("name", "caf\u00e9").put("flag", true).putNull("none");
        cfg.putArray("architectures").add("BertModel");
        cfg.putObject("id2label").put("1", "POS").put("0", "NEG");
        cfg.putArray("empty_list");
        cfg.putObject("empty_obj");
        ObjectNode nested = cfg.putArray("nested").addObject();
        nested.put("b", 1);
        nested.putArray("a").add(2).add(3);
        Path dir = tmp.resolve("model");
        HfFolder.writeConfig(dir, cfg);
        // Produced by Python: json.dumps(cfg, indent=2, sort_keys=True) + "\n" (what transformers writes).
        String python = "{\n  \"architectures\": [\n    \"BertModel\"\n  ],\n  \"empty_list\": [],\n  \"empty_obj\": {},\n"
                + "  \"flag\": true,\n  \"hidden_size\": 384,\n  \"id2label\": {\n    \"0\": \"NEG\",\n    \"1\": \"POS\"\n  },\n"
                + "  \"layer_norm_eps\": 0.5,\n  \"model_type\": \"bert\",\n  \"name\": \"caf\\u00e9\",\n  \"nested\": [\n"
                + "    {\n      \"a\": [\n        2,\n        3\n      ],\n      \"b\": 1\n    }\n  ],\n  \"none\": null\n}\n";
        String written = Files.readString(dir.resolve("config.json"));
        assertEquals(python.replace("\\u00e9", "\\u00E9"), written.replace("\\u00e9", "\\u00E9"));
        JsonNode back = HfFolder.readConfig(dir);
        assertEquals(cfg, back);
        assertEquals("caf\u00e9", back.get("name").textValue());

        // A Map works too.
        HfFolder.writeConfig(dir, Map.of("b", 2, "a", List.of(1)));
        assertEquals("{\n  \"a\": [\n    1\n  ],\n  \"b\": 2\n}\n", Files.readString(dir.resolve("config.json")));
        assertThrows(IllegalArgumentException.class, () -> HfFolder.writeConfig(dir, List.of(1, 2)));
    }

    @Test
    void configErrorsNameTheFile() throws IOException {
        Path missingDir = tmp.resolve("nope");
        CheckpointException e = assertThrows(CheckpointException.class, () -> HfFolder.readConfig(missingDir));
        assertTrue(e.getMessage().contains(missingDir.toString()), e.getMessage());

        Path dir = Files.createDirectories(tmp.resolve("m"));
        e = assertThrows(CheckpointException.class, () -> HfFolder.readConfig(dir));
        assertTrue(e.getMessage().contains(dir.resolve("config.json").toString()), e.getMessage());

        Files.writeString(dir.resolve("config.json"), "{\"hidden_size\": 384,\n \"oops\" }");
        e = assertThrows(CheckpointException.class, () -> HfFolder.readConfig(dir));
        assertTrue(e.getMessage().contains(dir.resolve("config.json").toString()) && e.getMessage().contains("line 2"),
                e.getMessage());

        Files.writeString(dir.resolve("config.json"), "[1]");
        e = assertThrows(CheckpointException.class, () -> HfFolder.readConfig(dir));
        assertTrue(e.getMessage().contains("object"), e.getMessage());
    }

    @Test
    void singleFileWeights() throws IOException {
        Path dir = tmp.resolve("single");
        Map<String, INDArray> w = weights();
        HfFolder.writeWeights(dir, w);
        assertEquals(List.of("model.safetensors"), IoTestSupport.listNames(dir));
        assertEquals(Map.of("format", "pt"), SafeTensors.readMetadata(dir.resolve("model.safetensors")));
        assertTrue(HfFolder.hasWeights(dir));
        assertSameTensors(w, HfFolder.readWeights(dir, false));
        Map<String, INDArray> widened = HfFolder.readWeights(dir);
        assertEquals(DataType.FLOAT, widened.get("head.weight").dataType());
        assertEquals(1.5f, widened.get("head.weight").getFloat(0), 0f);
        try (CheckpointWeights cw = HfFolder.openWeights(dir)) {
            assertFalse(cw.isSharded());
            assertEquals(1, cw.files().size());
            assertEquals(0, cw.indexMetadata().size());
        }
    }

    @Test
    void shardedWeightsLikeTransformers() throws IOException {
        Path dir = tmp.resolve("sharded");
        Map<String, INDArray> w = weights();
        // 100-byte shards, greedy in map order: [emb 64 + bias 16] [layer.0.weight 128 alone, > max] [scale 4 + head 2].
        HfFolder.writeWeights(dir, w, 100);
        assertEquals(List.of("model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                "model-00003-of-00003.safetensors", "model.safetensors.index.json"), IoTestSupport.listNames(dir));
        JsonNode index = JsonFiles.read(dir.resolve("model.safetensors.index.json"));
        assertEquals(64 + 16 + 128 + 4 + 2, index.get("metadata").get("total_size").longValue());
        JsonNode wm = index.get("weight_map");
        assertEquals("model-00001-of-00003.safetensors", wm.get("embeddings.weight").textValue());
        assertEquals("model-00001-of-00003.safetensors", wm.get("layer.0.bias").textValue());
        assertEquals("model-00002-of-00003.safetensors", wm.get("layer.0.weight").textValue());
        assertEquals("model-00003-of-00003.safetensors", wm.get("layer.1.scale").textValue());
        assertEquals("model-00003-of-00003.safetensors", wm.get("head.weight").textValue());
        List<String> names = new ArrayList<>();
        wm.fieldNames().forEachRemaining(names::add);
        assertEquals(names.stream().sorted().toList(), names, "weight_map keys sorted");

        assertSameTensors(w, HfFolder.readWeights(dir, false));
        try (CheckpointWeights cw = HfFolder.openWeights(dir)) {
            assertTrue(cw.isSharded());
            assertEquals(3, cw.files().size());
            assertEquals(5, cw.size());
            // Shard by shard; inside a shard in data order (dtype descending, then name: F32 before BF16).
            assertEquals(List.of("embeddings.weight", "layer.0.bias", "layer.0.weight", "layer.1.scale", "head.weight"),
                    cw.keys());
            assertEquals(dir.resolve("model-00002-of-00003.safetensors").toAbsolutePath().normalize(),
                    cw.fileOf("layer.0.weight"));
            assertArrayEquals(new long[]{4, 8}, cw.info("layer.0.weight").shape());
            assertEquals(Map.of("format", "pt"), cw.shardMetadata("head.weight"));
            List<String> seen = new ArrayList<>();
            cw.forEach((k, v) -> {
                seen.add(k);
                assertArrayEquals(IoTestSupport.rawBytes(k.equals("head.weight") ? w.get(k).castTo(DataType.FLOAT) : w.get(k)),
                        IoTestSupport.rawBytes(v), k);
            });
            assertEquals(cw.keys(), seen);
            Map<String, Supplier<INDArray>> lazy = cw.suppliers();
            assertEquals(0.5f, lazy.get("layer.1.scale").get().getFloat(0), 0f);
            CheckpointException e = assertThrows(CheckpointException.class, () -> cw.get("missing.weight"));
            assertTrue(e.getMessage().contains("'missing.weight'"), e.getMessage());
        }
    }

    @Test
    void switchingLayoutRemovesStaleFiles() throws IOException {
        Path dir = tmp.resolve("switch");
        Map<String, INDArray> w = weights();
        HfFolder.writeWeights(dir, w);
        HfFolder.writeWeights(dir, w, 100);
        assertFalse(Files.exists(dir.resolve("model.safetensors")), "a stale single file would shadow the shards");
        assertEquals(4, IoTestSupport.listNames(dir).size());
        // Fewer, larger shards: the third old shard must go.
        HfFolder.writeWeights(dir, w, 150);
        assertEquals(List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                "model.safetensors.index.json"), IoTestSupport.listNames(dir));
        assertSameTensors(w, HfFolder.readWeights(dir, false));
        HfFolder.writeWeights(dir, w);
        assertEquals(List.of("model.safetensors"), IoTestSupport.listNames(dir));
        assertSameTensors(w, HfFolder.readWeights(dir, false));
    }

    @Test
    void noWeights() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("empty"));
        assertFalse(HfFolder.hasWeights(dir));
        CheckpointException e = assertThrows(CheckpointException.class, () -> HfFolder.readWeights(dir));
        assertTrue(e.getMessage().contains(dir.toString()) && e.getMessage().contains("model.safetensors"), e.getMessage());
        Path none = tmp.resolve("none");
        e = assertThrows(CheckpointException.class, () -> HfFolder.readWeights(none));
        assertTrue(e.getMessage().contains(none.toString()), e.getMessage());
    }

    /** A sharded folder whose index is then replaced by {@code indexJson}. */
    private Path shardedWithIndex(String name, String indexJson) throws IOException {
        Path dir = tmp.resolve(name);
        HfFolder.writeWeights(dir, weights(), 100);
        Files.writeString(dir.resolve("model.safetensors.index.json"), indexJson);
        return dir;
    }

    private static final String S1 = "model-00001-of-00003.safetensors";
    private static final String S2 = "model-00002-of-00003.safetensors";
    private static final String S3 = "model-00003-of-00003.safetensors";

    private static String index(String... pairs) {
        StringBuilder sb = new StringBuilder("{\"metadata\":{\"total_size\":214},\"weight_map\":{");
        for (int i = 0; i < pairs.length; i += 2) {
            sb.append(i > 0 ? "," : "").append('"').append(pairs[i]).append("\":\"").append(pairs[i + 1]).append('"');
        }
        return sb.append("}}").toString();
    }

    private static String[] goodPairs() {
        return new String[]{"embeddings.weight", S1, "layer.0.bias", S1, "layer.0.weight", S2, "layer.1.scale", S3,
                "head.weight", S3};
    }

    @Test
    void indexNamingAMissingShard() throws IOException {
        String[] p = goodPairs();
        p[5] = "model-00002-of-00002.safetensors";
        Path dir = shardedWithIndex("missing-shard", index(p));
        CheckpointException e = assertThrows(CheckpointException.class, () -> HfFolder.readWeights(dir));
        assertTrue(e.getMessage().contains("model-00002-of-00002.safetensors") && e.getMessage().contains("missing")
                && e.getMessage().contains("layer.0.weight"), e.getMessage());
    }

    @Test
    void keyListedButAbsentFromItsShard() throws IOException {
        String[] p = goodPairs();
        p[1] = S2; // embeddings.weight is really in shard 1
        Path dir = shardedWithIndex("wrong-shard", index(p));
        CheckpointException e = assertThrows(CheckpointException.class, () -> HfFolder.readWeights(dir));
        assertTrue(e.getMessage().contains("'embeddings.weight'") && e.getMessage().contains(S2), e.getMessage());

        String[] q = {"embeddings.weight", S1, "layer.0.bias", S1, "layer.0.weight", S2, "layer.1.scale", S3,
                "head.weight", S3, "ghost.weight", S3};
        Path dir2 = shardedWithIndex("ghost", index(q));
        e = assertThrows(CheckpointException.class, () -> HfFolder.readWeights(dir2));
        assertTrue(e.getMessage().contains("'ghost.weight'") && e.getMessage().contains(S3)
                && e.getMessage().contains("does not contain"), e.getMessage());
    }

    @Test
    void shardHoldingKeysTheIndexDoesNotList() throws IOException {
        String[] p = {"embeddings.weight", S1, "layer.0.bias", S1, "layer.0.weight", S2, "layer.1.scale", S3};
        Path dir = shardedWithIndex("unlisted", index(p));
        CheckpointException e = assertThrows(CheckpointException.class, () -> HfFolder.openWeights(dir).close());
        assertTrue(e.getMessage().contains("'head.weight'") && e.getMessage().contains(S3)
                && e.getMessage().contains("does not list"), e.getMessage());
    }

    @Test
    void malformedIndex() throws IOException {
        Path dir = shardedWithIndex("no-map", "{\"metadata\":{}}");
        CheckpointException e = assertThrows(CheckpointException.class, () -> HfFolder.readWeights(dir));
        assertTrue(e.getMessage().contains("weight_map") && e.getMessage().contains("model.safetensors.index.json"),
                e.getMessage());
        Path dir2 = shardedWithIndex("bad-json", "{\"weight_map\": {");
        e = assertThrows(CheckpointException.class, () -> HfFolder.readWeights(dir2));
        assertTrue(e.getMessage().contains("invalid JSON"), e.getMessage());
        String[] p = goodPairs();
        p[1] = "../" + S1;
        Path dir3 = shardedWithIndex("escape", index(p));
        e = assertThrows(CheckpointException.class, () -> HfFolder.readWeights(dir3));
        assertTrue(e.getMessage().contains("outside"), e.getMessage());
    }

    @Test
    void corruptShardIsReportedByFile() throws IOException {
        Path dir = tmp.resolve("corrupt");
        HfFolder.writeWeights(dir, weights(), 100);
        Path s2 = dir.resolve(S2);
        byte[] b = Files.readAllBytes(s2);
        Files.write(s2, java.util.Arrays.copyOf(b, b.length - 3));
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> HfFolder.readWeights(dir));
        assertTrue(e.getMessage().contains(S2) && e.getMessage().contains("'layer.0.weight'"), e.getMessage());
    }

    @Test
    void writeWeightsValidatesArguments() {
        Path dir = tmp.resolve("bad");
        assertThrows(IllegalArgumentException.class, () -> HfFolder.writeWeights(dir, weights(), 0));
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.put("w", null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HfFolder.writeWeights(dir, m));
        assertTrue(e.getMessage().contains("'w'"), e.getMessage());
    }
}
