package org.peft4j.core.model.generate;

import org.junit.jupiter.api.Test;
import org.peft4j.core.tensor.Rng;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LogitsProcessingTest {
    private static final float NEG = Float.NEGATIVE_INFINITY;

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeOncePerToken() {
        float[] l = {2.0f, -1.0f, 0.5f, 3.0f, -4.0f};
        // token 1 appears twice: penalised once, as HF gathers/scatters each id once
        LogitsProcessing.repetitionPenalty(l, new int[]{0, 1, 1, 4, 99}, 4, 2.0);
        assertArrayEquals(new float[]{1.0f, -2.0f, 0.5f, 3.0f, -8.0f}, l, 0f);
    }

    @Test
    void repetitionPenaltyRejectsIdsOutsideVocabulary() {
        assertThrows(IllegalArgumentException.class,
                () -> LogitsProcessing.repetitionPenalty(new float[3], new int[]{5}, 1, 1.3));
    }

    @Test
    void topKKeepsExactlyTheKLargest() {
        float[] l = {0.1f, 5f, -2f, 3f, 4f, 0f};
        LogitsProcessing.topK(l, 3);
        assertArrayEquals(new float[]{NEG, 5f, NEG, 3f, 4f, NEG}, l, 0f);
    }

    @Test
    void topKAtOrAboveVocabularyKeepsAll() {
        float[] l = {1f, 2f, 3f};
        LogitsProcessing.topK(l, 3);
        LogitsProcessing.topK(l, 0);
        assertArrayEquals(new float[]{1f, 2f, 3f}, l, 0f);
    }

    @Test
    void topPKeepsSmallestPrefixWithEnoughMass() {
        // probabilities 0.5, 0.25, 0.125, 0.125 (logits are their logs)
        float[] base = {(float) Math.log(0.125), (float) Math.log(0.5), (float) Math.log(0.125), (float) Math.log(0.25)};
        float[] l = base.clone();
        LogitsProcessing.topP(l, 0.7);           // 0.5 < 0.7 <= 0.75 → two tokens
        assertArrayEquals(new float[]{NEG, base[1], NEG, base[3]}, l, 0f);
        l = base.clone();
        LogitsProcessing.topP(l, 0.5);           // the top token alone has mass 0.5 ≥ 0.5
        assertArrayEquals(new float[]{NEG, base[1], NEG, NEG}, l, 0f);
        l = base.clone();
        LogitsProcessing.topP(l, 0.8);           // 0.75 < 0.8 → three tokens (first of the tied 0.125s by index)
        assertEquals(3, countFinite(l));
        assertEquals(base[0], l[0], 0f);
        l = base.clone();
        LogitsProcessing.topP(l, 0.01);          // always at least one token
        assertEquals(1, countFinite(l));
        assertEquals(base[1], l[1], 0f);
    }

    @Test
    void temperatureDividesLogits() {
        float[] l = {1f, -2f, 4f};
        LogitsProcessing.temperature(l, 0.5);
        assertArrayEquals(new float[]{2f, -4f, 8f}, l, 1e-7f);
    }

    @Test
    void argmaxTakesFirstOnTies() {
        assertEquals(1, LogitsProcessing.argmax(new float[]{0f, 3f, 3f, -1f}));
    }

    @Test
    void samplingFollowsTheDistribution() {
        float[] l = {(float) Math.log(0.2), (float) Math.log(0.5), (float) Math.log(0.3), NEG};
        int[] counts = new int[4];
        Rng rng = new Rng(11);
        int n = 20000;
        for (int i = 0; i < n; i++) {
            counts[LogitsProcessing.sample(l, rng)]++;
        }
        assertEquals(0, counts[3]);
        // 4 sigma of a binomial with n = 20000 is at most 0.0142
        assertEquals(0.2, counts[0] / (double) n, 0.0142);
        assertEquals(0.5, counts[1] / (double) n, 0.0142);
        assertEquals(0.3, counts[2] / (double) n, 0.0142);
    }

    @Test
    void sameSeedSamePicks() {
        float[] l = {0.3f, 0.1f, 0.9f, -0.2f, 0.5f};
        Rng a = new Rng(5);
        Rng b = new Rng(5);
        for (int i = 0; i < 50; i++) {
            assertEquals(LogitsProcessing.sample(l, a), LogitsProcessing.sample(l, b));
        }
    }

    @Test
    void greedySelectionAppliesPenaltyButNotTemperatureOrFilters() {
        GenerationConfig cfg = GenerationConfig.builder().repetitionPenalty(4.0).temperature(0.1).topK(1).build();
        // token 0 would win, but it was seen: 4/4 = 1 < 2
        assertEquals(1, LogitsProcessing.select(new float[]{4f, 2f, 1f}, new int[]{0}, 1, cfg, new Rng(1)));
    }

    @Test
    void samplingWithTopKOneIsGreedy() {
        GenerationConfig cfg = GenerationConfig.builder().doSample(true).topK(1).seed(3).build();
        Rng rng = new Rng(3);
        for (int i = 0; i < 20; i++) {
            assertEquals(2, LogitsProcessing.select(new float[]{0.1f, 0.2f, 0.3f, -1f}, new int[0], 0, cfg, rng));
        }
    }

    @Test
    void invalidConfigsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> GenerationConfig.builder().temperature(0).build());
        assertThrows(IllegalArgumentException.class, () -> GenerationConfig.builder().topP(0).build());
        assertThrows(IllegalArgumentException.class, () -> GenerationConfig.builder().topP(1.5).build());
        assertThrows(IllegalArgumentException.class, () -> GenerationConfig.builder().topK(-1).build());
        assertThrows(IllegalArgumentException.class, () -> GenerationConfig.builder().repetitionPenalty(0).build());
        assertThrows(IllegalArgumentException.class, () -> GenerationConfig.builder().maxNewTokens(-1).build());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LogitsProcessing.softmax(new float[]{NEG, NEG}));
        assertTrue(e.getMessage().contains("-inf"));
    }

    private static int countFinite(float[] l) {
        int n = 0;
        for (float v : l) {
            if (v != NEG) {
                n++;
            }
        }
        return n;
    }
}
