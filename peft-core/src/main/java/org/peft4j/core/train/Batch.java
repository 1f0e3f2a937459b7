package org.peft4j.core.train;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One batch of model inputs.
 *
 * @param inputIds      token ids {@code [B, T]} (INT64)
 * @param attentionMask 1 for real tokens, 0 for padding {@code [B, T]} (FLOAT), or null
 * @param tokenTypeIds  segment ids {@code [B, T]} (INT64), or null
 * @param labels        class ids {@code [B]} or token labels {@code [B, T]} with -100 at ignored
 *                      positions (INT64), or null
 * @param extra         additional named arrays (e.g. teacher logits for distillation), never null
 */
public record Batch(INDArray inputIds, INDArray attentionMask, INDArray tokenTypeIds, INDArray labels,
                    Map<String, INDArray> extra) {

    /** The label value that losses and metrics skip (PyTorch's {@code ignore_index}). */
    public static final int IGNORE_INDEX = -100;

    public Batch {
        if (inputIds == null) {
            throw new IllegalArgumentException("batch inputIds must not be null");
        }
        if (inputIds.rank() != 2) {
            throw new IllegalArgumentException("batch inputIds must be [batch, seq], got rank " + inputIds.rank());
        }
        checkSameShape("attentionMask", attentionMask, inputIds);
        checkSameShape("tokenTypeIds", tokenTypeIds, inputIds);
        if (labels != null && labels.size(0) != inputIds.size(0)) {
            throw new IllegalArgumentException("batch labels have " + labels.size(0) + " rows, inputIds have " + inputIds.size(0));
        }
        extra = extra == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(extra));
    }

    public Batch(INDArray inputIds, INDArray attentionMask, INDArray tokenTypeIds, INDArray labels) {
        this(inputIds, attentionMask, tokenTypeIds, labels, Map.of());
    }

    private static void checkSameShape(String what, INDArray a, INDArray ids) {
        if (a != null && !java.util.Arrays.equals(a.shape(), ids.shape())) {
            throw new IllegalArgumentException("batch " + what + " has shape " + java.util.Arrays.toString(a.shape())
                    + ", inputIds have " + java.util.Arrays.toString(ids.shape()));
        }
    }

    /** Number of sequences B. */
    public int size() {
        return (int) inputIds.size(0);
    }

    /** Padded length T. */
    public int seqLength() {
        return (int) inputIds.size(1);
    }

    /** Number of real (unpadded) tokens, for throughput reporting. */
    public long numTokens() {
        if (attentionMask == null) {
            return inputIds.length();
        }
        return Math.round(attentionMask.sumNumber().doubleValue());
    }

    /** An extra array by name; an error naming the available keys when absent. */
    public INDArray extra(String key) {
        INDArray a = extra.get(key);
        if (a == null) {
            throw new IllegalArgumentException("batch has no extra array '" + key + "' (available: " + extra.keySet() + ")");
        }
        return a;
    }
}
