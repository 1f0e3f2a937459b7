package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.model.gpt2.Gpt2LMHeadModel;
import org.peft4j.core.model.llama.LlamaForCausalLM;
import org.peft4j.core.nn.Module;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CLI's --model loading goes through the model-family registry and loads every fixture as the family does. */
class ModelsRegistryTest {

    static void assertSameWeights(Module a, Module b, String what) {
        Map<String, INDArray> sa = a.stateDict();
        Map<String, INDArray> sb = b.stateDict();
        assertEquals(sa.keySet(), sb.keySet(), what);
        sa.forEach((k, x) -> assertArrayEquals(x.castTo(DataType.DOUBLE).data().asDouble(),
                sb.get(k).castTo(DataType.DOUBLE).data().asDouble(), 0.0, what + ": " + k));
    }

    @ParameterizedTest
    @ValueSource(strings = {"decoders/gpt2", "decoders/gpt2-bare", "decoders/llama-gqa", "decoders/llama-headdim",
            "decoders/mistral", "decoders/qwen2"})
    void everyDecoderFixtureLoadsAsTheFamilysOwnLoad(String fixture) throws Exception {
        Path dir = CliTestSupport.fixture(fixture);
        assertEquals(Models.Kind.DECODER, Models.kind(dir.toString()));
        try (Models.Base base = Models.load(dir.toString(), 0L)) {
            assertNull(base.encoder);
            Module direct = fixture.contains("gpt2") ? Gpt2LMHeadModel.load(dir) : LlamaForCausalLM.load(dir);
            assertEquals(direct.getClass(), base.decoder.getClass(), fixture);
            assertSameWeights(direct, base.decoder, fixture);
        }
    }

    @Test
    void theBertFixtureLoadsAsBertModelLoad() throws Exception {
        Path dir = CliTestSupport.fixture("bert-tiny");
        assertEquals(Models.Kind.ENCODER, Models.kind(dir.toString()));
        try (Models.Base base = Models.load(dir.toString(), 0L)) {
            assertNull(base.decoder);
            assertSameWeights(BertModel.load(dir), base.encoder, "bert-tiny");
        }
    }

    @Test
    void decoderTypesComeFromTheRegistry() {
        assertEquals(List.of("gpt2", "llama", "mistral", "qwen2"), Models.DECODER_TYPES);
    }

    @Test
    void unknownModelTypeListsTheKnownOnes(@TempDir Path tmp) throws Exception {
        Path dir = CliTestSupport.copyModel("decoders/gpt2", tmp.resolve("falcon"));
        ObjectNode cfg = JsonFiles.readObject(dir.resolve(HfFolder.CONFIG_FILE));
        cfg.put("model_type", "falcon");
        JsonFiles.write(dir.resolve(HfFolder.CONFIG_FILE), cfg);
        CliException e = assertThrows(CliException.class, () -> Models.load(dir.toString(), 0L));
        assertTrue(e.getMessage().contains(dir.resolve(HfFolder.CONFIG_FILE).toString())
                && e.getMessage().contains("unknown model_type 'falcon'")
                && e.getMessage().contains("bert, gpt2, llama, mistral, mt5, qwen2, t5"), e.getMessage());
        CliTestSupport.Run r = CliTestSupport.cli("info", "--model", dir.toString());
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains("unknown model_type 'falcon'"), r.toString());
    }
}
