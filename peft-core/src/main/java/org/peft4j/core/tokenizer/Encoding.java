package org.peft4j.core.tokenizer;

import java.util.Arrays;

/**
 * One tokenized text: token ids, attention mask (1 = real token, 0 = padding) and token type
 * (segment) ids, all of the same length.
 */
public record Encoding(int[] ids, int[] attentionMask, int[] typeIds) {

    public Encoding {
        if (ids == null || attentionMask == null || typeIds == null) {
            throw new IllegalArgumentException("encoding arrays must not be null");
        }
        if (attentionMask.length != ids.length || typeIds.length != ids.length) {
            throw new IllegalArgumentException("encoding arrays differ in length: ids " + ids.length
                    + ", attentionMask " + attentionMask.length + ", typeIds " + typeIds.length);
        }
    }

    public int length() {
        return ids.length;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Encoding e && Arrays.equals(ids, e.ids)
                && Arrays.equals(attentionMask, e.attentionMask) && Arrays.equals(typeIds, e.typeIds);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * Arrays.hashCode(ids) + Arrays.hashCode(attentionMask)) + Arrays.hashCode(typeIds);
    }

    @Override
    public String toString() {
        return "Encoding{ids=" + Arrays.toString(ids) + ", attentionMask=" + Arrays.toString(attentionMask)
                + ", typeIds=" + Arrays.toString(typeIds) + "}";
    }
}
