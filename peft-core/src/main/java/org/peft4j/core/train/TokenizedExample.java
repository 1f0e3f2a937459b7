package org.peft4j.core.train;

/** A tokenized example that {@link PaddingCollator} can pad: token ids and optional segment ids. */
public sealed interface TokenizedExample permits Example, TokenExample {

    /** Token ids, unpadded. */
    int[] ids();

    /** Segment (token type) ids of the same length as {@link #ids()}, or null. */
    int[] typeIds();
}
