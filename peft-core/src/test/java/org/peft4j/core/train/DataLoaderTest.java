package org.peft4j.core.train;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

class DataLoaderTest {

    private static Dataset<Example> numbered(int n) {
        List<Example> xs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            xs.add(new Example(new int[]{i + 1}, i));
        }
        return Dataset.of(xs);
    }

    private static DataLoader<Example> loader(int n, int batch, boolean shuffle, long seed, boolean dropLast) {
        return DataLoader.builder(numbered(n), PaddingCollator.<Example>dynamic(0))
                .batchSize(batch).shuffle(shuffle).seed(seed).dropLast(dropLast).build();
    }

    @Test
    void orderIsReproducibleFromSeedAndEpoch() {
        DataLoader<Example> a = loader(50, 8, true, 7, false);
        DataLoader<Example> b = loader(50, 8, true, 7, false);
        for (int epoch = 0; epoch < 3; epoch++) {
            assertArrayEquals(a.order(epoch), b.order(epoch), "epoch " + epoch);
        }
        // asking for epochs out of order does not change them (no hidden generator state)
        int[] e2 = a.order(2);
        a.order(0);
        assertArrayEquals(e2, a.order(2));
        assertFalse(Arrays.equals(a.order(0), a.order(1)), "epochs must differ");
        assertFalse(Arrays.equals(a.order(0), loader(50, 8, true, 8, false).order(0)), "seeds must differ");
        int[] sorted = a.order(1).clone();
        Arrays.sort(sorted);
        for (int i = 0; i < 50; i++) {
            assertEquals(i, sorted[i], "a shuffle is a permutation");
        }
        // the order does not depend on the batch size (so accumulation can split batches)
        assertArrayEquals(a.order(1), loader(50, 4, true, 7, false).order(1));
    }

    @Test
    void batchesFollowTheOrder() {
        DataLoader<Example> l = loader(10, 4, true, 3, false);
        int[] order = l.order(1);
        Batch b1 = l.batch(1, 1);
        assertEquals(4, b1.size());
        for (int i = 0; i < 4; i++) {
            assertEquals(order[4 + i], b1.labels().getLong(i));
        }
        List<Batch> all = new ArrayList<>();
        l.epoch(1).forEach(all::add);
        assertEquals(3, all.size());
        assertEquals(2, all.get(2).size(), "last partial batch kept");
        List<Batch> tail = new ArrayList<>();
        l.iterator(1, 2).forEachRemaining(tail::add);
        assertEquals(1, tail.size());
        assertEquals(all.get(2).labels(), tail.get(0).labels());
    }

    @Test
    void unshuffledUsesDatasetOrderAndDropLastDrops() {
        DataLoader<Example> l = loader(10, 4, false, 3, true);
        assertEquals(2, l.numBatches());
        assertArrayEquals(new int[]{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, l.order(5));
        assertEquals(3, loader(10, 4, false, 3, false).numBatches());
        assertThrows(IllegalArgumentException.class, () -> loader(3, 4, false, 0, true));
        assertThrows(IllegalArgumentException.class, () -> loader(3, 0, false, 0, false));
        assertThrows(IndexOutOfBoundsException.class, () -> l.batch(0, 2));
    }
}
