package org.peft4j.core.train;

/** A sequence-classification example: token ids, optional segment ids, and one class id. */
public record Example(int[] ids, int[] typeIds, int label) implements TokenizedExample {

    public Example {
        if (ids == null || ids.length == 0) {
            throw new IllegalArgumentException("example ids must not be empty");
        }
        if (typeIds != null && typeIds.length != ids.length) {
            throw new IllegalArgumentException("example typeIds length " + typeIds.length + " != ids length " + ids.length);
        }
    }

    public Example(int[] ids, int label) {
        this(ids, null, label);
    }
}
