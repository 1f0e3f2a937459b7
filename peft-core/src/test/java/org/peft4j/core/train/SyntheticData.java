package org.peft4j.core.train;

import org.peft4j.core.tensor.Rng;

import java.util.ArrayList;
import java.util.List;

/**
 * A seeded, separable 3-class token problem: class c owns the signal tokens
 * {@code 1 + 5c … 5 + 5c}; tokens 16…29 are noise shared by all classes; 0 is padding.
 * Each example has 3–8 tokens, at least 2 of them signal tokens of its class.
 */
final class SyntheticData {
    static final int VOCAB = 30;
    static final int CLASSES = 3;

    private SyntheticData() {
    }

    static List<Example> examples(int n, long seed) {
        Rng rng = new Rng(seed);
        List<Example> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int label = i % CLASSES;
            int len = 3 + rng.nextInt(6);
            int signal = 2 + rng.nextInt(len - 1);
            int[] ids = new int[len];
            for (int j = 0; j < len; j++) {
                ids[j] = j < signal ? 1 + 5 * label + rng.nextInt(5) : 16 + rng.nextInt(14);
            }
            for (int j = len - 1; j > 0; j--) {
                int k = rng.nextInt(j + 1);
                int tmp = ids[j];
                ids[j] = ids[k];
                ids[k] = tmp;
            }
            out.add(new Example(ids, label));
        }
        return out;
    }
}
