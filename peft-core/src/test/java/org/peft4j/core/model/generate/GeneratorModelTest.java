package org.peft4j.core.model.generate;

import org.junit.jupiter.api.Test;
import org.peft4j.core.model.decoder.DecoderFixture;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.model.gpt2.Gpt2LMHeadModel;
import org.peft4j.core.model.llama.LlamaForCausalLM;

import java.io.IOException;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Cached decoding against recompute-everything decoding on the fixture models. */
class GeneratorModelTest {
    static final int[][] PROMPTS = {{5, 17, 3, 9, 22, 41, 8}, {12}, {30, 2, 2, 7}};

    static DecoderLM[] models() throws IOException {
        return new DecoderLM[]{
                Gpt2LMHeadModel.load(DecoderFixture.ROOT.resolve("gpt2")),
                LlamaForCausalLM.load(DecoderFixture.ROOT.resolve("llama-gqa")),
                LlamaForCausalLM.load(DecoderFixture.ROOT.resolve("qwen2"))};
    }

    static void assertSame(GenerationResult a, GenerationResult b, String what) {
        assertEquals(a.batchSize(), b.batchSize());
        for (int i = 0; i < a.batchSize(); i++) {
            assertArrayEquals(a.tokens(i), b.tokens(i), what + " row " + i);
        }
    }

    @Test
    void cachedGreedyEqualsUncachedGreedyOverLongContinuations() throws IOException {
        for (DecoderLM m : models()) {
            GenerationConfig cfg = GenerationConfig.greedy(14);
            assertSame(new Generator(m).generate(PROMPTS, cfg, true), new Generator(m).generate(PROMPTS, cfg, false),
                    m.getClass().getSimpleName() + " greedy");
        }
    }

    @Test
    void cachedSamplingEqualsUncachedSamplingAndIsReproducible() throws IOException {
        GenerationConfig cfg = GenerationConfig.builder().maxNewTokens(10).doSample(true).temperature(1.3).topK(20)
                .topP(0.9).repetitionPenalty(1.2).seed(42).build();
        for (DecoderLM m : models()) {
            String name = m.getClass().getSimpleName();
            GenerationResult cached = new Generator(m).generate(PROMPTS, cfg, true);
            assertSame(cached, new Generator(m).generate(PROMPTS, cfg, false), name + " sampled, cache vs none");
            assertSame(cached, new Generator(m).generate(PROMPTS, cfg, true), name + " sampled, same seed again");
            GenerationResult other = new Generator(m).generate(PROMPTS, cfg.toBuilder().seed(43).build(), true);
            boolean differs = false;
            for (int i = 0; i < PROMPTS.length; i++) {
                differs |= !java.util.Arrays.equals(cached.tokens(i), other.tokens(i));
            }
            assertTrue(differs, name + ": another seed should change some of 30 sampled tokens");
        }
    }

    @Test
    void aSingleRowGeneratesTheSameAloneAsInsideAPaddedBatch() throws IOException {
        for (DecoderLM m : models()) {
            GenerationConfig cfg = GenerationConfig.greedy(6);
            GenerationResult batch = new Generator(m).generate(PROMPTS, cfg);
            for (int i = 0; i < PROMPTS.length; i++) {
                GenerationResult alone = new Generator(m).generate(new int[][]{PROMPTS[i]}, cfg);
                assertArrayEquals(alone.tokens(0), batch.tokens(i), m.getClass().getSimpleName() + " row " + i);
            }
        }
    }

    @Test
    void stopTokenEndsTheRowOnARealModel() throws IOException {
        DecoderLM m = LlamaForCausalLM.load(DecoderFixture.ROOT.resolve("llama-gqa"));
        GenerationResult free = new Generator(m).generate(PROMPTS, GenerationConfig.greedy(12));
        int stop = free.tokens(0)[3];
        GenerationResult r = new Generator(m).generate(PROMPTS,
                GenerationConfig.builder().maxNewTokens(12).stopTokenIds(stop).build());
        int first = -1;
        for (int i = 0; i < free.tokens(0).length; i++) {
            if (free.tokens(0)[i] == stop) {
                first = i;
                break;
            }
        }
        assertTrue(r.stopped()[0]);
        assertArrayEquals(java.util.Arrays.copyOf(free.tokens(0), first + 1), r.tokens(0));
        for (int b = 1; b < PROMPTS.length; b++) {
            boolean hasStop = java.util.Arrays.stream(free.tokens(b)).anyMatch(t -> t == stop);
            if (!hasStop) {
                assertFalse(r.stopped()[b]);
                assertArrayEquals(free.tokens(b), r.tokens(b), "rows without the stop token are unaffected");
            }
        }
    }
}
