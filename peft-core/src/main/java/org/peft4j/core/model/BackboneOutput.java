package org.peft4j.core.model;

import java.util.List;

import org.peft4j.core.tensor.Tensor;

/**
 * What {@link Backbone#forward} returns.
 *
 * @param lastHiddenState {@code [batch, seq, hidden]} (after the final norm in decoders)
 * @param hiddenStates    when asked: Hugging Face's {@code hidden_states}, numLayers + 1 entries
 *                        (the embedding output, then each layer's output; decoders replace the
 *                        last by the final-norm output, as Hugging Face does); otherwise empty
 * @param attentions      when asked: each layer's attention probabilities
 *                        {@code [batch, heads, seq, keys]} with keys = prefix + cached + seq, the
 *                        softmax rows before attention dropout (each sums to 1; Hugging Face returns
 *                        them after dropout, which differs only in training), differentiable;
 *                        otherwise empty
 */
public record BackboneOutput(Tensor lastHiddenState, List<Tensor> hiddenStates, List<Tensor> attentions) {
    public BackboneOutput {
        hiddenStates = hiddenStates == null ? List.of() : List.copyOf(hiddenStates);
        attentions = attentions == null ? List.of() : List.copyOf(attentions);
    }
}
