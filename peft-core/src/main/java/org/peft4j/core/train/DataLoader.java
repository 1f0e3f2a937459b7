package org.peft4j.core.train;

import org.peft4j.core.tensor.Rng;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * Cuts a {@link Dataset} into batches and collates them.
 *
 * <p>Shuffling is a pure function of {@code (seed, epoch)}: epoch {@code e} always visits the
 * examples in the same order, so a resumed run only needs the epoch and the batch index to
 * continue exactly where it stopped (there is no hidden generator state to save). Without
 * shuffling every epoch uses dataset order.
 *
 * <p>The last, smaller batch is kept unless {@code dropLast} is set.
 */
public final class DataLoader<T> implements Iterable<Batch> {

    private final Dataset<T> dataset;
    private final Collator<T> collator;
    private final int batchSize;
    private final boolean shuffle;
    private final long seed;
    private final boolean dropLast;

    private int cachedEpoch = -1;
    private int[] cachedOrder;

    private DataLoader(Builder<T> b) {
        if (b.dataset == null) {
            throw new IllegalArgumentException("data loader needs a dataset");
        }
        if (b.collator == null) {
            throw new IllegalArgumentException("data loader needs a collator");
        }
        if (b.batchSize <= 0) {
            throw new IllegalArgumentException("batchSize must be positive: " + b.batchSize);
        }
        this.dataset = b.dataset;
        this.collator = b.collator;
        this.batchSize = b.batchSize;
        this.shuffle = b.shuffle;
        this.seed = b.seed;
        this.dropLast = b.dropLast;
        if (numBatches() == 0) {
            throw new IllegalArgumentException("data loader yields no batch: dataset has " + dataset.size()
                    + " examples, batchSize " + batchSize + (dropLast ? " with dropLast" : ""));
        }
    }

    public static <T> Builder<T> builder(Dataset<T> dataset, Collator<T> collator) {
        return new Builder<>(dataset, collator);
    }

    /** A shuffled training loader using the config's batch size and seed (keeps the last partial batch). */
    public static <T> DataLoader<T> forTraining(Dataset<T> dataset, Collator<T> collator, TrainingConfig config) {
        return builder(dataset, collator).batchSize(config.batchSize()).shuffle(true).seed(config.seed()).build();
    }

    /** An unshuffled evaluation loader. */
    public static <T> DataLoader<T> forEvaluation(Dataset<T> dataset, Collator<T> collator, int batchSize) {
        return builder(dataset, collator).batchSize(batchSize).shuffle(false).build();
    }

    public Dataset<T> dataset() {
        return dataset;
    }

    public int batchSize() {
        return batchSize;
    }

    public boolean shuffle() {
        return shuffle;
    }

    public long seed() {
        return seed;
    }

    public boolean dropLast() {
        return dropLast;
    }

    /** Batches per epoch. */
    public int numBatches() {
        int n = dataset.size();
        return dropLast ? n / batchSize : (n + batchSize - 1) / batchSize;
    }

    /** The visiting order of dataset indices in {@code epoch} (a fresh copy). */
    public int[] order(int epoch) {
        return orderOf(epoch).clone();
    }

    private synchronized int[] orderOf(int epoch) {
        if (epoch < 0) {
            throw new IllegalArgumentException("epoch must be >= 0: " + epoch);
        }
        if (epoch != cachedEpoch) {
            int n = dataset.size();
            int[] order = new int[n];
            for (int i = 0; i < n; i++) {
                order[i] = i;
            }
            if (shuffle) {
                // A generator of its own per epoch, derived from (seed, epoch) only.
                Rng rng = new Rng(new Rng(seed ^ (0xD1B54A32D192ED03L * (epoch + 1L))).nextLong());
                for (int i = n - 1; i > 0; i--) {
                    int j = rng.nextInt(i + 1);
                    int tmp = order[i];
                    order[i] = order[j];
                    order[j] = tmp;
                }
            }
            cachedOrder = order;
            cachedEpoch = epoch;
        }
        return cachedOrder;
    }

    /** The examples of batch {@code index} in {@code epoch}. */
    public List<T> examples(int epoch, int index) {
        int nb = numBatches();
        if (index < 0 || index >= nb) {
            throw new IndexOutOfBoundsException("batch index " + index + " out of [0, " + nb + ")");
        }
        int[] order = orderOf(epoch);
        int from = index * batchSize;
        int to = Math.min(from + batchSize, order.length);
        List<T> out = new ArrayList<>(to - from);
        for (int i = from; i < to; i++) {
            out.add(dataset.get(order[i]));
        }
        return out;
    }

    /** Batch {@code index} of {@code epoch}, collated. */
    public Batch batch(int epoch, int index) {
        return collator.collate(examples(epoch, index));
    }

    /** The batches of {@code epoch} starting at batch {@code fromBatch} (collated lazily). */
    public Iterator<Batch> iterator(int epoch, int fromBatch) {
        int nb = numBatches();
        if (fromBatch < 0 || fromBatch > nb) {
            throw new IllegalArgumentException("fromBatch " + fromBatch + " out of [0, " + nb + "]");
        }
        orderOf(epoch);
        return new Iterator<>() {
            private int next = fromBatch;

            @Override
            public boolean hasNext() {
                return next < nb;
            }

            @Override
            public Batch next() {
                if (next >= nb) {
                    throw new NoSuchElementException();
                }
                return batch(epoch, next++);
            }
        };
    }

    /** The batches of {@code epoch}. */
    public Iterable<Batch> epoch(int epoch) {
        return () -> iterator(epoch, 0);
    }

    /** The batches of epoch 0 (for evaluation loaders, where order is dataset order). */
    @Override
    public Iterator<Batch> iterator() {
        return iterator(0, 0);
    }

    /** Settings for a {@link DataLoader}; defaults: batch size 8, no shuffling, seed 42, keep the last batch. */
    public static final class Builder<T> {
        private final Dataset<T> dataset;
        private final Collator<T> collator;
        private int batchSize = 8;
        private boolean shuffle = false;
        private long seed = 42;
        private boolean dropLast = false;

        private Builder(Dataset<T> dataset, Collator<T> collator) {
            this.dataset = dataset;
            this.collator = collator;
        }

        public Builder<T> batchSize(int batchSize) {
            this.batchSize = batchSize;
            return this;
        }

        public Builder<T> shuffle(boolean shuffle) {
            this.shuffle = shuffle;
            return this;
        }

        public Builder<T> seed(long seed) {
            this.seed = seed;
            return this;
        }

        public Builder<T> dropLast(boolean dropLast) {
            this.dropLast = dropLast;
            return this;
        }

        public DataLoader<T> build() {
            return new DataLoader<>(this);
        }
    }
}
