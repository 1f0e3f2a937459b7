package org.peft4j.core.train;

/**
 * A token-level example: token ids, optional segment ids, and one label per token
 * ({@link Batch#IGNORE_INDEX} = -100 where no loss is wanted). For causal language modelling
 * the labels are usually the ids themselves (the model shifts them).
 */
public record TokenExample(int[] ids, int[] typeIds, int[] labels) implements TokenizedExample {

    public TokenExample {
        if (ids == null || ids.length == 0) {
            throw new IllegalArgumentException("example ids must not be empty");
        }
        if (typeIds != null && typeIds.length != ids.length) {
            throw new IllegalArgumentException("example typeIds length " + typeIds.length + " != ids length " + ids.length);
        }
        if (labels == null || labels.length != ids.length) {
            throw new IllegalArgumentException("token labels length " + (labels == null ? "null" : labels.length)
                    + " != ids length " + ids.length);
        }
    }

    public TokenExample(int[] ids, int[] labels) {
        this(ids, null, labels);
    }

    /** A causal-LM example whose labels are its ids. */
    public static TokenExample causalLm(int[] ids) {
        return new TokenExample(ids, null, ids.clone());
    }
}
