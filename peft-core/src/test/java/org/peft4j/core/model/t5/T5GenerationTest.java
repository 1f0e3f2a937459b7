package org.peft4j.core.model.t5;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.decoder.CausalLMs;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.model.generate.GenerationConfig;
import org.peft4j.core.model.generate.GenerationResult;
import org.peft4j.core.model.generate.Generator;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Greedy and beam-search continuations of the tiny T5 checkpoints (and beam search on the GPT-2
 * fixture, through the same generator) equal the PyTorch reference's, with and without caches.
 */
class T5GenerationTest {

    static int[] padded(int[] tokens, int width, int pad) {
        int[] out = Arrays.copyOf(tokens, width);
        Arrays.fill(out, tokens.length, width, pad);
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"t5-v1_0", "t5-v1_1"})
    void greedyAndBeamMatchPyTorch(String name) throws IOException {
        T5ReferenceTest.Fixture f = T5ReferenceTest.Fixture.load(name);
        T5ForConditionalGeneration m = T5ForConditionalGeneration.load(f.dir());
        INDArray ids = f.get("gen.input_ids");
        INDArray mask = f.get("gen.attention_mask");
        INDArray greedy = f.get("gen.greedy");
        INDArray beam = f.get("gen.beam");
        JsonNode b = f.meta().get("beam");
        for (boolean cache : new boolean[]{true, false}) {
            GenerationResult g = new Generator(m).generate(ids, mask, GenerationConfig.greedy((int) greedy.size(1)), cache);
            for (int r = 0; r < greedy.size(0); r++) {
                assertArrayEquals(greedy.getRow(r).toIntVector(), g.tokens(r), name + " greedy row " + r + " cache=" + cache);
            }
            GenerationConfig bc = GenerationConfig.builder().maxNewTokens(b.get("max_new_tokens").asInt())
                    .numBeams(b.get("num_beams").asInt()).lengthPenalty(b.get("length_penalty").asDouble())
                    .stopTokenIds(m.config().eosTokenIds().get(0)).padTokenId(m.config().padTokenId()).build();
            GenerationResult br = new Generator(m).generate(ids, mask, bc, cache);
            for (int r = 0; r < beam.size(0); r++) {
                assertArrayEquals(beam.getRow(r).toIntVector(), padded(br.tokens(r), (int) beam.size(1), 0),
                        name + " beam row " + r + " cache=" + cache + ": " + br);
            }
        }
    }

    @Test
    void beamSearchOnGpt2MatchesPyTorch() throws IOException {
        Path dir = Path.of("src/test/resources/fixtures/decoders/gpt2");
        DecoderLM m = CausalLMs.load(dir);
        Map<String, INDArray> ref = SafeTensors.load(dir.resolve("reference.safetensors"));
        Map<String, INDArray> beam = SafeTensors.load(dir.resolve("beam.safetensors"));
        JsonNode meta = JsonFiles.read(dir.resolve("beam.json"));
        INDArray want = beam.get("beam.output_ids");
        GenerationConfig cfg = GenerationConfig.builder().maxNewTokens(meta.get("max_new_tokens").asInt())
                .numBeams(meta.get("num_beams").asInt()).lengthPenalty(meta.get("length_penalty").asDouble())
                .stopTokenIds(meta.get("eos_token_id").asInt()).padTokenId(0).build();
        for (boolean cache : new boolean[]{true, false}) {
            GenerationResult r = new Generator(m).generate(ref.get("gen.prompt_ids"), ref.get("gen.prompt_mask"), cfg, cache);
            for (int row = 0; row < want.size(0); row++) {
                assertArrayEquals(want.getRow(row).toIntVector(), padded(r.tokens(row), (int) want.size(1), 0),
                        "gpt2 beam row " + row + " cache=" + cache + ": " + r);
            }
        }
    }

    @Test
    void oneBeamIsGreedyAndSamplingIsSeeded() throws IOException {
        T5ForConditionalGeneration m = T5ForConditionalGeneration.load(T5ReferenceTest.ROOT.resolve("t5-v1_1"));
        int[][] prompts = {{5, 6, 7}, {9, 3}};
        GenerationResult g = new Generator(m).generate(prompts, GenerationConfig.greedy(5));
        GenerationResult one = new Generator(m).generate(prompts, GenerationConfig.builder().maxNewTokens(5).numBeams(1).build());
        assertEquals(g.toString(), one.toString());
        GenerationConfig s = GenerationConfig.builder().maxNewTokens(6).doSample(true).temperature(1.5).seed(7).build();
        assertEquals(new Generator(m).generate(prompts, s, true).toString(), new Generator(m).generate(prompts, s, false).toString());
    }
}
