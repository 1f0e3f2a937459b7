package org.peft4j.core.model.decoder;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.tensor.Tensor;

/**
 * A decoder-only language model as {@link org.peft4j.core.model.generate.Generator} sees it.
 *
 * <p>Padding follows Hugging Face: {@code attentionMask} has 1 for real tokens and 0 for pads;
 * a token's position is the number of real tokens before it ({@code cumsum(mask) - 1}), which
 * equals {@code arange} for unpadded or right-padded input and is what HF {@code generate()}
 * uses for left-padded prompts. Logits at pad positions are meaningless.
 */
public interface CausalLM {

    int vocabSize();

    /** The longest sequence (cached + new positions) the model accepts. */
    int maxPositions();

    int numLayers();

    /**
     * Logits {@code [B, T, vocab]} for {@code inputIds [B, T]}. {@code attentionMask} covers the
     * cached positions and the new ones, {@code [B, cache.length() + T]} (null = all ones). With a
     * cache, the new keys/values are appended to it; without one, the whole sequence is given.
     */
    Tensor forward(INDArray inputIds, INDArray attentionMask, KvCache cache);

    /** An empty cache sized for this model. */
    default KvCache newCache() {
        return new KvCache(numLayers());
    }
}
