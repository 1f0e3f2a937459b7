package org.peft4j.core.tokenizer;

import java.util.List;

/**
 * Text to token ids and back. Implementations add the model's special tokens (for BERT:
 * {@code [CLS] text [SEP]}), truncate on request and pad batches on the right.
 */
public interface Tokenizer extends AutoCloseable {

    /** How a batch is padded. */
    enum Padding {
        /** To the longest sequence in the batch. */
        LONGEST,
        /** To {@code maxLength} exactly. */
        MAX_LENGTH
    }

    /**
     * Encodes one text with special tokens. With {@code truncation} the result is cut to at
     * most {@code maxLength} tokens (special tokens kept, text tokens dropped from the end);
     * without it, {@code maxLength} is ignored. No padding.
     */
    Encoding encode(String text, int maxLength, boolean truncation);

    /** Encodes one text with special tokens, untruncated. */
    default Encoding encode(String text) {
        return encode(text, Integer.MAX_VALUE, false);
    }

    /**
     * Encodes a batch and pads it on the right with {@link #padId()}. With
     * {@link Padding#MAX_LENGTH} every row has {@code maxLength} columns (so truncation must be on,
     * or every text must fit).
     */
    BatchEncoding encodeBatch(List<String> texts, int maxLength, boolean truncation, Padding padding);

    /** Decodes ids to text, skipping special tokens. */
    default String decode(int[] ids) {
        return decode(ids, true);
    }

    String decode(int[] ids, boolean skipSpecialTokens);

    /** The id of a token string, or -1 when it is not in the vocabulary. */
    int tokenToId(String token);

    int clsId();

    int sepId();

    int padId();

    int unkId();

    int maskId();

    /** Size of the id space (vocabulary plus added tokens): every id is below this. */
    int vocabSize();

    @Override
    void close();
}
