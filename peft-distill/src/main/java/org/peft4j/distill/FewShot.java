package org.peft4j.distill;

import org.peft4j.core.train.Batch;
import org.peft4j.core.train.Example;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.TreeMap;

/**
 * The few-shot setting: k examples keep their gold label, the rest of the pool keeps only its text
 * (label {@link Batch#IGNORE_INDEX}) and learns from the teacher's soft targets alone.
 */
public final class FewShot {
    private FewShot() {
    }

    /**
     * The indices of k examples, balanced over the classes (round-robin over the classes in label
     * order, each class's examples in a seeded random order), returned in ascending order.
     */
    public static List<Integer> chooseLabelled(List<Example> examples, int k, long seed) {
        if (k < 0 || k > examples.size()) {
            throw new IllegalArgumentException("few-shot k must be in [0, " + examples.size() + "], got " + k);
        }
        TreeMap<Integer, List<Integer>> byClass = new TreeMap<>();
        for (int i = 0; i < examples.size(); i++) {
            int y = examples.get(i).label();
            if (y == Batch.IGNORE_INDEX) {
                continue;
            }
            byClass.computeIfAbsent(y, c -> new ArrayList<>()).add(i);
        }
        Random rnd = new Random(seed);
        for (List<Integer> l : byClass.values()) {
            Collections.shuffle(l, rnd);
        }
        List<Integer> chosen = new ArrayList<>();
        int round = 0;
        while (chosen.size() < k) {
            boolean any = false;
            for (List<Integer> l : byClass.values()) {
                if (round < l.size() && chosen.size() < k) {
                    chosen.add(l.get(round));
                    any = true;
                }
            }
            if (!any) {
                throw new IllegalArgumentException("few-shot k = " + k + " but only " + chosen.size() + " examples have a label");
            }
            round++;
        }
        Collections.sort(chosen);
        return chosen;
    }

    /** The k chosen examples with their labels (the labels-alone baseline). */
    public static List<Example> labelledOnly(List<Example> examples, int k, long seed) {
        List<Example> out = new ArrayList<>();
        for (int i : chooseLabelled(examples, k, seed)) {
            out.add(examples.get(i));
        }
        return out;
    }

    /** Every example, the k chosen keeping their label and the others with {@link Batch#IGNORE_INDEX}. */
    public static List<Example> withSoftPool(List<Example> examples, int k, long seed) {
        boolean[] keep = new boolean[examples.size()];
        for (int i : chooseLabelled(examples, k, seed)) {
            keep[i] = true;
        }
        List<Example> out = new ArrayList<>(examples.size());
        for (int i = 0; i < examples.size(); i++) {
            out.add(keep[i] ? examples.get(i) : unlabelled(examples.get(i)));
        }
        return out;
    }

    /** The same text without its gold label. */
    public static Example unlabelled(Example e) {
        return new Example(e.ids(), e.typeIds(), Batch.IGNORE_INDEX);
    }
}
