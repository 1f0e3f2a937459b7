package org.peft4j.core.model.generate;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.model.decoder.CausalLM;
import org.peft4j.core.nn.KVCache;
import org.peft4j.core.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The generator's bookkeeping (padding, stop tokens, length limits, cache feeding) on a toy model
 * whose next-token logits are a fixed function of the real tokens seen so far: logit(v) is
 * maximal at v = (sum of real tokens + 1) mod V. The cached path stores each step's token sum.
 */
class GeneratorToyModelTest {
    static final int V = 7;

    /** Next-token rule: (sum of real tokens so far + 1) mod V. */
    static final class SumModel implements CausalLM {
        final List<long[]> calls = new ArrayList<>();
        long[] cachedSums;

        @Override
        public int vocabSize() {
            return V;
        }

        @Override
        public int maxPositions() {
            return 12;
        }

        @Override
        public int numLayers() {
            return 1;
        }

        @Override
        public Tensor forward(INDArray ids, INDArray mask, KVCache[] cache) {
            int b = (int) ids.size(0);
            int t = (int) ids.size(1);
            int past = cache == null ? 0 : (int) cache[0].length();
            assertEquals(past + t, mask.size(1), "mask covers cached + new positions");
            calls.add(new long[]{t, past});
            if (cache == null || past == 0) {
                cachedSums = new long[b];
            }
            INDArray out = Nd4j.zeros(DataType.FLOAT, b, t, V);
            for (int i = 0; i < b; i++) {
                for (int j = 0; j < t; j++) {
                    if (mask.getLong(i, past + j) == 1) {
                        cachedSums[i] += ids.getLong(i, j);
                    }
                    int best = (int) ((cachedSums[i] + 1) % V);
                    for (int v = 0; v < V; v++) {
                        out.putScalar(new long[]{i, j, v}, v == best ? 2.0f : -0.1f * v);
                    }
                }
            }
            if (cache != null) {
                Tensor dummy = Tensor.constant(Nd4j.zeros(DataType.FLOAT, b, 1, t, 1));
                cache[0].append(dummy, dummy);
            }
            return Tensor.constant(out);
        }
    }

    static int[] expected(int[] prompt, int n, int stop) {
        List<Integer> out = new ArrayList<>();
        long s = 0;
        for (int p : prompt) {
            s += p;
        }
        for (int i = 0; i < n; i++) {
            int tok = (int) ((s + 1) % V);
            out.add(tok);
            s += tok;
            if (tok == stop) {
                break;
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    @Test
    void greedyFollowsTheRuleForRaggedPromptsWithAndWithoutCache() {
        int[][] prompts = {{3, 1, 4}, {6}};
        for (boolean cache : new boolean[]{true, false}) {
            SumModel m = new SumModel();
            GenerationResult r = new Generator(m).generate(prompts, GenerationConfig.greedy(5), cache);
            assertArrayEquals(expected(prompts[0], 5, -1), r.tokens(0));
            assertArrayEquals(expected(prompts[1], 5, -1), r.tokens(1));
            assertEquals(5, m.calls.size(), "one forward per new token (the last token is not fed)");
            if (cache) {
                assertEquals(3, m.calls.get(0)[0]);
                for (int i = 1; i < 5; i++) {
                    assertEquals(1, m.calls.get(i)[0], "cached steps feed one token");
                    assertEquals(2 + i, m.calls.get(i)[1]);
                }
            } else {
                for (int i = 0; i < 5; i++) {
                    assertEquals(3 + i, m.calls.get(i)[0], "uncached steps feed the whole sequence");
                }
            }
        }
    }

    @Test
    void stopTokenEndsARowWhileOthersContinue() {
        int[][] prompts = {{1}, {2}};
        // row 0 emits 2, 4, 1, 2, 4, 1 (never 5); row 1 emits 3, 6, 5 and stops
        GenerationConfig cfg = GenerationConfig.builder().maxNewTokens(6).stopTokenIds(5).padTokenId(0).build();
        GenerationResult r = new Generator(new SumModel()).generate(prompts, cfg);
        assertArrayEquals(expected(prompts[0], 6, 5), r.tokens(0));
        assertArrayEquals(expected(prompts[1], 6, 5), r.tokens(1));
        assertFalse(r.stopped()[0]);
        assertEquals(6, r.tokens(0).length);
        assertTrue(r.stopped()[1]);
        assertArrayEquals(new int[]{3, 6, 5}, r.tokens(1));
    }

    @Test
    void everyRowStoppedEndsGeneration() {
        SumModel m = new SumModel();
        GenerationConfig cfg = GenerationConfig.builder().maxNewTokens(10).stopTokenIds(2).build();
        GenerationResult r = new Generator(m).generate(new int[][]{{1}}, cfg);
        assertArrayEquals(new int[]{2}, r.tokens(0));
        assertEquals(1, m.calls.size());
    }

    @Test
    void rejectsBadPromptsAndLengths() {
        Generator g = new Generator(new SumModel());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> g.generate(new int[][]{{1, 2, 3}}, GenerationConfig.greedy(11)));
        assertTrue(e.getMessage().contains("limit 12"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> g.generate(new int[][]{{}}, GenerationConfig.greedy(2)));
        e = assertThrows(IllegalArgumentException.class, () -> g.generate(new int[][]{{9}}, GenerationConfig.greedy(2)));
        assertTrue(e.getMessage().contains("token id 9"), e.getMessage());
        INDArray ids = Nd4j.createFromArray(new long[][]{{1, 2, 0}});
        INDArray rightPadded = Nd4j.createFromArray(new long[][]{{1, 1, 0}});
        e = assertThrows(IllegalArgumentException.class,
                () -> g.generate(ids, rightPadded, GenerationConfig.greedy(2), true));
        assertTrue(e.getMessage().contains("left padding"), e.getMessage());
    }

    @Test
    void zeroNewTokensGivesEmptyRows() {
        GenerationResult r = new Generator(new SumModel()).generate(new int[][]{{1, 2}}, GenerationConfig.greedy(0));
        assertEquals(0, r.tokens(0).length);
        assertFalse(r.stopped()[0]);
    }
}
