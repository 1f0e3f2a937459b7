package org.peft4j.spark;

import com.fasterxml.jackson.databind.JsonNode;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.train.TrainingConfig;

import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.List;

/**
 * Everything a training task needs, as plain serializable values (the PEFT and training configs
 * travel as their JSON, in the keys {@code peft4j train} reads).
 *
 * @param source          how executors build the frozen base
 * @param peftJson        the method config in PEFT's keys ({@code peft_type: LORA, r: 8, …}); null trains every
 *                        weight of the model (full fine-tuning, the baseline; no adapter folder is produced)
 * @param trainingJson    {@link TrainingConfig} keys; {@code batch_size} is the GLOBAL batch
 * @param textColumn      a string column (tokenized on the executors) or an array-of-int column (token ids)
 * @param labelColumn     an integer column (class ids) or a string column (names from {@code labels})
 * @param labels          class names in id order
 * @param maxLength       tokens per example after truncation
 * @param numTasks        data-parallel replicas (barrier tasks); each needs a free task slot
 * @param checkpointDir   Hadoop file-system URI for checkpoints (null: none, and no resume)
 * @param syncEvery       1: gradients are summed every step (exact data parallelism); k > 1: each task takes
 *                        k local steps on its shard, then parameters and optimizer state are averaged
 * @param threadsPerTask  ND4J threads per task (0: leave ND4J's default)
 * @param maxRestarts     how often the driver resubmits a failed training job (barrier: it resumes from the last
 *                        checkpoint) or re-runs a failed step (aggregate)
 * @param exchange        {@link #BARRIER}: one barrier stage, replicas all-gather gradients every step;
 *                        {@link #AGGREGATE}: one job per step, the driver holds the optimizer (see README for the measured trade-off)
 */
public record SparkTrainSpec(ModelSource source, String peftJson, String trainingJson, String textColumn, String labelColumn,
                             List<String> labels, int maxLength, int numTasks, String checkpointDir, int syncEvery,
                             int threadsPerTask, int maxRestarts, String exchange) implements Serializable {
    public static final String BARRIER = "barrier";
    public static final String AGGREGATE = "aggregate";


    public SparkTrainSpec {
        if (source == null) {
            throw new IllegalArgumentException("a training spec needs a model source");
        }
        if (numTasks <= 0) {
            throw new IllegalArgumentException("num_tasks must be positive: " + numTasks);
        }
        if (syncEvery <= 0) {
            throw new IllegalArgumentException("sync_every must be positive: " + syncEvery);
        }
        if (maxLength <= 0) {
            throw new IllegalArgumentException("max_length must be positive: " + maxLength);
        }
        if (threadsPerTask < 0 || maxRestarts < 0) {
            throw new IllegalArgumentException("threads_per_task and max_restarts must be >= 0");
        }
        labels = List.copyOf(labels);
        if (!BARRIER.equals(exchange) && !AGGREGATE.equals(exchange)) {
            throw new IllegalArgumentException("exchange must be '" + BARRIER + "' or '" + AGGREGATE + "', got '" + exchange + "'");
        }
        if (AGGREGATE.equals(exchange) && syncEvery > 1) {
            throw new IllegalArgumentException("sync_every > 1 (local steps) needs exchange: " + BARRIER
                    + " (replicas keep their own state between syncs)");
        }
        if (peftJson != null) {
            PeftConfig.fromJson(peftJson, "peft");   // fail on the driver, not in every task
        }
        TrainingConfig t = training(trainingJson);
        if (checkpointDir != null && syncEvery > 1 && t.checkpointInterval() > 0 && t.checkpointInterval() % syncEvery != 0) {
            throw new IllegalArgumentException("training.checkpoint_interval (" + t.checkpointInterval()
                    + ") must be a multiple of sync_every (" + syncEvery + "): replicas agree only after a sync");
        }
    }

    public TrainingConfig training() {
        return training(trainingJson);
    }

    public PeftConfig peft() {
        PeftConfig p = PeftConfig.fromJson(peftJson, "peft");
        p.setSeed(training().seed());
        return p;
    }

    private static TrainingConfig training(String json) {
        try {
            JsonNode n = JsonFiles.mapper().readTree(json);
            return TrainingConfig.fromJson(n);
        } catch (IOException e) {
            throw new UncheckedIOException("training config is not JSON", e);
        }
    }

    /** The identity of a training replica on an executor: the base and the adapter it starts from. */
    String replicaKey() {
        return "train|" + source.key() + "|" + peftJson + "|seed=" + training().seed();
    }
}
