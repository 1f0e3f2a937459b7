package org.peft4j.core.model.generate;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.nn.KVCache;
import org.peft4j.core.tensor.Tensor;

/**
 * An encoder-decoder language model as {@link Generator} sees it (T5): the encoder runs once, the
 * decoder step by step with a self-attention KV cache and cross-attention keys/values computed
 * once from the encoder output.
 */
public interface Seq2SeqLM {

    int vocabSize();

    /** The longest encoder input and the longest decoder input accepted. */
    int maxPositions();

    /** The token the decoder starts from ({@code decoder_start_token_id}); an error naming the key when the config has none. */
    int decoderStartTokenId();

    /** The encoder output {@code [B, S, hidden]} of {@code inputIds [B, S]} (mask null = no padding). */
    Tensor encode(INDArray inputIds, INDArray attentionMask);

    /**
     * Decoder logits {@code [B, T, vocab]}; {@code caches} (one per decoder layer) are appended to,
     * {@code crossCache} holds each layer's cross-attention keys/values once computed; both may be null.
     */
    Tensor decode(INDArray decoderInputIds, INDArray decoderMask, Tensor encoderHidden, INDArray encoderMask,
                  KVCache[] caches, Tensor[][] crossCache);

    KVCache[] newCaches();

    Tensor[][] newCrossCache();
}
