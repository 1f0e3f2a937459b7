package org.peft4j.spark;

import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tokenizer.Tokenizer;

import java.io.Serializable;

/**
 * How an executor builds the frozen base model: a small serializable description (a name, a
 * folder) shipped in the task closure instead of the weights. {@link #load()} runs once per task
 * slot and executor JVM ({@link Replicas} caches the result), and must give the same model on
 * every executor: the classification head is drawn from a fixed seed.
 */
public interface ModelSource extends Serializable {

    /** A stable identity of what {@link #load()} builds (the executor cache key). */
    String key();

    /** Builds the base classifier (not yet PEFT-wrapped) and its tokenizer. */
    Loaded load();

    /**
     * A loaded base: the classifier, its tokenizer (null when the data is pre-tokenized), and the
     * generators its dropout masks come from (re-seeded per step so that a resumed or retried task
     * draws the same masks).
     */
    record Loaded(BertForSequenceClassification model, Tokenizer tokenizer, Rng... dropoutRngs) {
        public Loaded {
            if (model == null) {
                throw new IllegalArgumentException("a model source must load a model");
            }
        }
    }
}
