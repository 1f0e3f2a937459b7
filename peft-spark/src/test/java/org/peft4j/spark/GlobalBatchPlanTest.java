package org.peft4j.spark;

import org.junit.jupiter.api.Test;
import org.peft4j.core.train.DataLoader;
import org.peft4j.core.train.Dataset;
import org.peft4j.core.train.TrainingConfig;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The routing that makes N tasks see exactly the single-process batches. */
class GlobalBatchPlanTest {

    @Test
    void tasksTogetherSeeTheSingleProcessBatchesInOrder() {
        // 37 rows, batch 8 (last batch 5 rows), 3 tasks, 2 epochs, accumulation 2
        TrainingConfig cfg = TrainingConfig.builder().batchSize(8).epochs(2).gradientAccumulationSteps(2).seed(7).build();
        GlobalBatchPlan plan = new GlobalBatchPlan(37, cfg, 3);
        List<Integer> idx = new ArrayList<>();
        for (int i = 0; i < 37; i++) {
            idx.add(i);
        }
        DataLoader<Integer> ref = DataLoader.forTraining(Dataset.of(idx), ex -> null, cfg);
        assertEquals(5, plan.batchesPerEpoch);
        assertEquals(6, plan.totalSteps);       // 3 updates per epoch (2 + 2 + 1 batches)
        assertEquals(2, plan.epochs);
        for (long step = 0; step < plan.totalSteps; step++) {
            int epoch = plan.epochOfStep(step);
            for (int j : plan.batchesOfStep(step)) {
                List<Integer> expected = ref.examples(epoch, j);
                int b = plan.batchLength(j);
                assertEquals(expected.size(), b);
                List<Integer> got = new ArrayList<>();
                for (int t = 0; t < 3; t++) {
                    for (int pos = plan.shardStart(b, t); pos < plan.shardStart(b, t + 1); pos++) {
                        long key = (long) epoch * 37 + (long) j * 8 + pos;
                        assertEquals(t, plan.taskOfKey(key), "key " + key);
                        got.add(expected.get(pos));
                        // the example's own key is that position
                        assertEquals(key, plan.key(epoch, expected.get(pos)));
                    }
                }
                assertEquals(expected, got);
            }
        }
        assertArrayEquals(new int[]{4}, plan.batchesOfStep(2));
        assertEquals(37 + 16, plan.firstKeyOfStep(4));
    }

    @Test
    void shardsOfAShortBatchDifferByAtMostOneRow() {
        GlobalBatchPlan plan = new GlobalBatchPlan(21, TrainingConfig.builder().batchSize(16).epochs(1).build(), 4);
        int b = plan.batchLength(1);
        assertEquals(5, b);
        int[] sizes = new int[4];
        for (int t = 0; t < 4; t++) {
            sizes[t] = plan.shardStart(b, t + 1) - plan.shardStart(b, t);
        }
        assertArrayEquals(new int[]{1, 1, 1, 2}, sizes);
    }

    @Test
    void globalBatchSmallerThanTaskCountIsRejected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new GlobalBatchPlan(100, TrainingConfig.builder().batchSize(2).build(), 4));
        assertEquals(true, e.getMessage().contains("batch_size"));
    }
}
