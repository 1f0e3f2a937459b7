package org.peft4j.core.model.decoder;

import org.peft4j.core.tensor.Tensor;

import java.util.List;

/**
 * What a decoder forward returns.
 *
 * @param logits       {@code [B, T, vocab]}
 * @param hiddenStates when requested, {@code numLayers + 1} tensors {@code [B, T, hidden]} as Hugging
 *                     Face's {@code output_hidden_states}: the embeddings, each block's output, the
 *                     last one after the final norm; otherwise empty
 */
public record DecoderOutput(Tensor logits, List<Tensor> hiddenStates) {
}
