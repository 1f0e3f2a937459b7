package org.peft4j.core.model.decoder;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.nn.AttentionContext;
import org.peft4j.core.nn.KVCache;
import org.peft4j.core.tensor.Tensor;

/**
 * A decoder-only language model as {@link org.peft4j.core.model.generate.Generator} sees it.
 *
 * <p>Padding follows Hugging Face: {@code attentionMask} has 1 for real tokens and 0 for pads.
 * Logits at pad positions are meaningless.
 */
public interface CausalLM {

    int vocabSize();

    /** The longest sequence (cached + new positions) the model accepts. */
    int maxPositions();

    int numLayers();

    /**
     * Logits {@code [B, T, vocab]} for {@code inputIds [B, T]}. {@code attentionMask} covers the
     * cached positions and the new ones, {@code [B, past + T]} (null = all ones). With caches
     * (one per layer, from {@link #newCaches()}), the new keys/values are appended to them and
     * {@code past} is their length; without, the whole sequence is given.
     */
    Tensor forward(INDArray inputIds, INDArray attentionMask, KVCache[] caches);

    /** Empty caches, one per layer. */
    default KVCache[] newCaches() {
        return AttentionContext.newCaches(numLayers());
    }
}
