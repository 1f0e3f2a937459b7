package org.peft4j.spark;

import org.peft4j.core.train.DataLoader;
import org.peft4j.core.train.Dataset;
import org.peft4j.core.train.TrainingConfig;

import java.io.Serializable;

/**
 * Which example every task sees at every step, so that {@code N} tasks together compute exactly
 * the batches one process would.
 *
 * <p>The single-process {@link DataLoader} visits epoch {@code e} in {@code order(e)} (a pure
 * function of seed and epoch) and cuts it into batches of {@code B}; update {@code s} consumes
 * {@code accumulation} consecutive batches. Here batch {@code j} of size {@code b} (the last one
 * may be smaller) is split by position: task {@code t} takes positions
 * {@code [⌊t·b/N⌋, ⌊(t+1)·b/N⌋)}. Every example of the data set therefore has, per epoch, one
 * <em>routing key</em> {@code e·n + position} and one owning task; sorting a task's examples by
 * key gives them in the order the task consumes them.
 *
 * <p>Holds the inverse permutations ({@code epochs × n} ints), broadcast once to the executors:
 * 100 M examples × 1 epoch is 400 MB, the practical limit of this scheme.
 */
final class GlobalBatchPlan implements Serializable {
    private static final long serialVersionUID = 1L;

    final int size;
    final int batchSize;
    final int tasks;
    final int accumulation;
    final int batchesPerEpoch;
    final long totalSteps;
    final int epochs;
    /** {@code position[e][i]}: where example {@code i} sits in epoch {@code e}'s order. */
    private final int[][] position;

    GlobalBatchPlan(int size, TrainingConfig cfg, int tasks) {
        if (size <= 0) {
            throw new IllegalArgumentException("the training data set is empty");
        }
        if (tasks <= 0) {
            throw new IllegalArgumentException("num_tasks must be positive: " + tasks);
        }
        if (cfg.batchSize() < tasks) {
            throw new IllegalArgumentException("training.batch_size (" + cfg.batchSize() + ") is the GLOBAL batch and must be at least "
                    + "num_tasks (" + tasks + ") so that every task has a shard");
        }
        this.size = size;
        this.batchSize = cfg.batchSize();
        this.tasks = tasks;
        this.accumulation = cfg.gradientAccumulationSteps();
        // the very loader a single process would use; only its order is read
        DataLoader<Integer> loader = DataLoader.builder(new IndexDataset(size), examples -> {
            throw new IllegalStateException("the plan's loader only provides the order");
        }).batchSize(batchSize).shuffle(true).seed(cfg.seed()).build();
        this.batchesPerEpoch = loader.numBatches();
        this.totalSteps = cfg.totalSteps(batchesPerEpoch);
        long stepsPerEpoch = cfg.stepsPerEpoch(batchesPerEpoch);
        this.epochs = (int) Math.max(1, (totalSteps + stepsPerEpoch - 1) / stepsPerEpoch);
        this.position = new int[epochs][];
        for (int e = 0; e < epochs; e++) {
            int[] order = loader.order(e);
            int[] inv = new int[size];
            for (int p = 0; p < size; p++) {
                inv[order[p]] = p;
            }
            position[e] = inv;
        }
    }

    long stepsPerEpoch() {
        return (batchesPerEpoch + accumulation - 1) / accumulation;
    }

    /** Routing key of example {@code index} in {@code epoch}: increasing in consumption order. */
    long key(int epoch, int index) {
        return (long) epoch * size + position[epoch][index];
    }

    /** The task that consumes the example with this routing key. */
    int taskOfKey(long key) {
        return taskOfKey(key, size, batchSize, tasks);
    }

    /** {@link #taskOfKey(long)} from the sizes alone (what the shuffle's partitioner holds). */
    static int taskOfKey(long key, int size, int batchSize, int tasks) {
        int pos = (int) (key % size);
        int batch = pos / batchSize;
        int inBatch = pos - batch * batchSize;
        int b = Math.min(batchSize, size - batch * batchSize);
        // the t with ⌊t·b/N⌋ ≤ inBatch < ⌊(t+1)·b/N⌋
        int t = (int) ((long) inBatch * tasks / b);
        while (t > 0 && (long) t * b / tasks > inBatch) {
            t--;
        }
        while (t + 1 < tasks && (long) (t + 1) * b / tasks <= inBatch) {
            t++;
        }
        return t;
    }

    /** Examples in batch {@code batch} of an epoch (the last may be short). */
    int batchLength(int batch) {
        return Math.min(batchSize, size - batch * batchSize);
    }

    /** First in-batch position of task {@code t}'s shard of a batch of length {@code b}. */
    int shardStart(int b, int t) {
        return (int) ((long) t * b / tasks);
    }

    /** The batch indices (within their epoch) that update {@code step} accumulates. */
    int[] batchesOfStep(long step) {
        long spe = stepsPerEpoch();
        long inEpoch = step % spe;
        int from = (int) (inEpoch * accumulation);
        int to = Math.min(from + accumulation, batchesPerEpoch);
        int[] out = new int[to - from];
        for (int i = 0; i < out.length; i++) {
            out[i] = from + i;
        }
        return out;
    }

    int epochOfStep(long step) {
        return (int) (step / stepsPerEpoch());
    }

    /** The routing key of the first example of {@code step} (a resumed task skips everything below it). */
    long firstKeyOfStep(long step) {
        return (long) epochOfStep(step) * size + (long) batchesOfStep(step)[0] * batchSize;
    }

    /** The dataset of indices {@code 0..n-1} the plan's loader orders. */
    private record IndexDataset(int size) implements Dataset<Integer> {
        @Override
        public Integer get(int index) {
            return index;
        }
    }
}
