package org.peft4j.core.model.decoder;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.gpt2.Gpt2LMHeadModel;
import org.peft4j.core.model.llama.LlamaForCausalLM;
import org.peft4j.core.tensor.NoGrad;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Strict loading (every key found, every key used, shapes checked), saving, and input limits. */
class DecoderLoadingTest {

    @TempDir
    Path tmp;

    /** A copy of fixture {@code name}'s config and weights, with the weights edited by {@code edit}. */
    Path copyWithWeights(String name, java.util.function.Consumer<Map<String, INDArray>> edit) throws IOException {
        Path src = DecoderFixture.ROOT.resolve(name);
        Path dst = tmp.resolve(name + "-edited");
        Files.createDirectories(dst);
        Files.copy(src.resolve("config.json"), dst.resolve("config.json"));
        Map<String, INDArray> w = new LinkedHashMap<>(SafeTensors.load(src.resolve("model.safetensors")));
        edit.accept(w);
        SafeTensors.write(dst.resolve("model.safetensors"), w, HfFolder.PT_METADATA);
        return dst;
    }

    static double logitsError(DecoderLM m, DecoderFixture f) {
        try (NoGrad ignored = NoGrad.enter()) {
            return DecoderFixture.maxAbsDiffMasked(m.forward(f.ids(), f.mask()).value(), f.ref.get("logits"), f.mask());
        }
    }

    @Test
    void bareGpt2CheckpointWithMaskBuffersLoadsToTheSameModel() throws IOException {
        DecoderFixture f = DecoderFixture.load("gpt2");
        Gpt2LMHeadModel bare = Gpt2LMHeadModel.load(DecoderFixture.ROOT.resolve("gpt2-bare"));
        assertTrue(bare.namedParameters().containsKey("transformer.h.0.attn.c_attn.weight"));
        assertFalse(bare.namedParameters().containsKey("lm_head.weight"), "tied head has no own parameter");
        assertTrue(logitsError(bare, f) <= 1e-4);
    }

    @Test
    void missingTensorIsNamed() throws IOException {
        Path dir = copyWithWeights("llama-gqa", w -> w.remove("model.layers.1.mlp.up_proj.weight"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LlamaForCausalLM.load(dir));
        assertTrue(e.getMessage().contains("missing keys [model.layers.1.mlp.up_proj.weight]"), e.getMessage());
        assertTrue(e.getMessage().contains(dir.toString()), e.getMessage());
    }

    @Test
    void unexpectedKeyIsNamed() throws IOException {
        Path dir = copyWithWeights("gpt2", w -> w.put("transformer.h.0.attn.extra.weight", Nd4j.ones(DataType.FLOAT, 2, 2)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Gpt2LMHeadModel.load(dir));
        assertTrue(e.getMessage().contains("unexpected keys [transformer.h.0.attn.extra.weight]"), e.getMessage());
    }

    @Test
    void untiedHeadMissingIsAnError() throws IOException {
        Path dir = copyWithWeights("mistral", w -> w.remove("lm_head.weight"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LlamaForCausalLM.load(dir));
        assertTrue(e.getMessage().contains("lm_head.weight"), e.getMessage());
    }

    @Test
    void tiedHeadDuplicateInFileIsAccepted() throws IOException {
        Path dir = copyWithWeights("qwen2", w -> w.put("lm_head.weight", w.get("model.embed_tokens.weight").dup()));
        assertTrue(logitsError(LlamaForCausalLM.load(dir), DecoderFixture.load("qwen2")) <= 1e-4);
    }

    @Test
    void wrongShapeNamesKeyExpectedAndFound() throws IOException {
        Path dir = copyWithWeights("llama-headdim", w -> w.put("model.layers.0.self_attn.k_proj.weight",
                Nd4j.zeros(DataType.FLOAT, 8, 24)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LlamaForCausalLM.load(dir));
        assertTrue(e.getMessage().contains("'model.layers.0.self_attn.k_proj.weight' expected [16, 24] found [8, 24]"),
                e.getMessage());
    }

    @Test
    void truncatedWeightsFileNamesTheFile() throws IOException {
        Path dir = copyWithWeights("gpt2", w -> { });
        Path file = dir.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, java.util.Arrays.copyOf(bytes, bytes.length - 100));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Gpt2LMHeadModel.load(dir));
        assertTrue(e.getMessage().contains("model.safetensors"), e.getMessage());
    }

    @Test
    void missingConfigKeyAndMissingConfigFileAreNamed() throws IOException {
        Path dir = copyWithWeights("llama-gqa", w -> { });
        ObjectNode cfg = JsonFiles.readObject(dir.resolve("config.json"));
        cfg.remove("num_hidden_layers");
        cfg.remove("intermediate_size");
        JsonFiles.write(dir.resolve("config.json"), cfg);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LlamaForCausalLM.load(dir));
        assertTrue(e.getMessage().contains("config.json"), e.getMessage());
        assertTrue(e.getMessage().contains("[intermediate_size, num_hidden_layers]"), e.getMessage());
        Files.delete(dir.resolve("config.json"));
        e = assertThrows(IllegalArgumentException.class, () -> LlamaForCausalLM.load(dir));
        assertTrue(e.getMessage().contains("config.json"), e.getMessage());
    }

    @Test
    void saveThenLoadGivesIdenticalWeightsAndLogits() throws IOException {
        for (String name : new String[]{"gpt2", "llama-headdim", "qwen2"}) {
            DecoderFixture f = DecoderFixture.load(name);
            DecoderLM m = DecoderReferenceTest.load(f.meta.get("family").asText(), f.dir);
            Path out = tmp.resolve("saved-" + name);
            m.save(out);
            Map<String, INDArray> written = SafeTensors.load(out.resolve("model.safetensors"));
            Map<String, INDArray> original = SafeTensors.load(f.dir.resolve("model.safetensors"));
            assertEquals(original.keySet(), written.keySet(), name + ": same HF keys (tied head not written)");
            for (String k : original.keySet()) {
                assertEquals(original.get(k), written.get(k), name + ": " + k);
            }
            assertEquals(Set.of("format"), SafeTensors.readMetadata(out.resolve("model.safetensors")).keySet());
            DecoderLM again = DecoderReferenceTest.load(f.meta.get("family").asText(), out);
            assertTrue(logitsError(again, f) <= 1e-4, name);
            assertEquals(JsonFiles.readObject(f.dir.resolve("config.json")).get("model_type"),
                    JsonFiles.readObject(out.resolve("config.json")).get("model_type"));
        }
    }

    @Test
    void shardedSaveLoadsBackThroughTheIndex() throws IOException {
        for (String name : new String[]{"gpt2", "llama-gqa", "qwen2"}) {
            DecoderFixture f = DecoderFixture.load(name);
            DecoderLM m = CausalLMs.load(f.dir);
            Path out = tmp.resolve("sharded-" + name);
            m.save(out, 10_000);
            assertTrue(Files.exists(out.resolve(HfFolder.WEIGHTS_INDEX_FILE)), name);
            assertFalse(Files.exists(out.resolve(HfFolder.WEIGHTS_FILE)), name);
            // the index maps every key to its shard, and the weights really are split
            Set<String> shards = new java.util.TreeSet<>();
            JsonFiles.readObject(out.resolve(HfFolder.WEIGHTS_INDEX_FILE)).get("weight_map").forEach(n -> shards.add(n.asText()));
            assertTrue(shards.size() >= 3, name + ": shards " + shards);
            for (String shard : shards) {
                assertTrue(Files.isRegularFile(out.resolve(shard)), name + ": " + shard);
            }
            DecoderLM again = CausalLMs.load(out);
            assertEquals(m.getClass(), again.getClass(), name);
            assertTrue(logitsError(again, f) <= 1e-4, name);
            // and through the family's own loader
            DecoderLM direct = name.equals("gpt2") ? Gpt2LMHeadModel.load(out) : LlamaForCausalLM.load(out);
            assertTrue(logitsError(direct, f) <= 1e-4, name);
        }
    }

    @Test
    void unknownModelTypeIsNamed() throws IOException {
        Path dir = copyWithWeights("gpt2", w -> { });
        ObjectNode cfg = JsonFiles.readObject(dir.resolve("config.json"));
        cfg.put("model_type", "falcon");
        JsonFiles.write(dir.resolve("config.json"), cfg);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CausalLMs.load(dir));
        assertTrue(e.getMessage().contains("falcon") && e.getMessage().contains("config.json"), e.getMessage());
    }

    @Test
    void sequenceLongerThanTheModelLimitIsRejected() throws IOException {
        Gpt2LMHeadModel g = Gpt2LMHeadModel.load(DecoderFixture.ROOT.resolve("gpt2"));
        INDArray ids = Nd4j.zeros(DataType.INT64, 1, 33);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> g.forward(ids, null));
        assertTrue(e.getMessage().contains("sequence length 33") && e.getMessage().contains("limit of 32"), e.getMessage());
        LlamaForCausalLM l = LlamaForCausalLM.load(DecoderFixture.ROOT.resolve("llama-headdim"));
        INDArray ids2 = Nd4j.zeros(DataType.INT64, 2, 49);
        e = assertThrows(IllegalArgumentException.class, () -> l.forward(ids2, null));
        assertTrue(e.getMessage().contains("sequence length 49") && e.getMessage().contains("limit of 48"), e.getMessage());
    }

    @Test
    void badInputsAreRejected() throws IOException {
        Gpt2LMHeadModel g = Gpt2LMHeadModel.load(DecoderFixture.ROOT.resolve("gpt2"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> g.forward(Nd4j.createFromArray(new long[][]{{1, 64}}), null));
        assertTrue(e.getMessage().contains("[0, 64)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> g.forward(Nd4j.createFromArray(new long[][]{{1, 2}}), Nd4j.createFromArray(new long[][]{{1, 1, 1}})));
        assertTrue(e.getMessage().contains("attention mask must be [1, 2]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> g.forward(Nd4j.createFromArray(new long[][]{{1, 2}}), Nd4j.createFromArray(new long[][]{{1, 2}})));
        assertTrue(e.getMessage().contains("0 and 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> g.forward(Nd4j.createFromArray(new float[][]{{1, 2}}), null));
        assertTrue(e.getMessage().contains("integers"), e.getMessage());
    }

    @Test
    void mistralSlidingWindowLimitsTheSequence() throws IOException {
        Path dir = copyWithWeights("mistral", w -> { });
        ObjectNode cfg = JsonFiles.readObject(dir.resolve("config.json"));
        cfg.put("sliding_window", 6);
        JsonFiles.write(dir.resolve("config.json"), cfg);
        LlamaForCausalLM m = LlamaForCausalLM.load(dir);
        assertEquals(6, m.maxPositions());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> m.forward(Nd4j.zeros(DataType.INT64, 1, 7), null));
        assertTrue(e.getMessage().contains("sliding_window"), e.getMessage());
    }

    @Test
    void randomModelsHaveHfNamesAndRun() {
        LlamaForCausalLM l = LlamaForCausalLM.random(org.peft4j.core.model.llama.LlamaConfig.load(
                DecoderFixture.ROOT.resolve("llama-gqa/config.json")), 3);
        assertTrue(l.isTraining());
        assertEquals(SafeTensorsKeys.of(DecoderFixture.ROOT.resolve("llama-gqa")), l.namedParameters().keySet());
        assertEquals(1.0, l.namedParameters().get("model.norm.weight").value().getDouble(0), 0.0);
        double std = l.namedParameters().get("model.layers.0.mlp.up_proj.weight").value().stdNumber().doubleValue();
        assertEquals(0.02, std, 0.002);
        Gpt2LMHeadModel g = Gpt2LMHeadModel.random(org.peft4j.core.model.gpt2.Gpt2Config.load(
                DecoderFixture.ROOT.resolve("gpt2/config.json")), 3);
        assertEquals(SafeTensorsKeys.of(DecoderFixture.ROOT.resolve("gpt2")), g.namedParameters().keySet());
        g.eval();
        try (NoGrad ignored = NoGrad.enter()) {
            INDArray logits = g.forward(Nd4j.createFromArray(new long[][]{{1, 2, 3}}), null).value();
            assertEquals(3, logits.rank());
            assertEquals(64, logits.size(2));
        }
    }

    /** The tensor keys of a fixture's weights file. */
    static final class SafeTensorsKeys {
        static Set<String> of(Path dir) {
            try {
                return SafeTensors.load(dir.resolve("model.safetensors")).keySet();
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }
    }
}
