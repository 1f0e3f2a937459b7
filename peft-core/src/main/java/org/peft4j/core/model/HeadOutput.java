package org.peft4j.core.model;

import org.peft4j.core.tensor.Tensor;

/**
 * What a task head on a {@link Backbone} returns from {@link HeadModel#forward(BackboneInputs)}.
 *
 * @param logits   the head's output: {@code [batch, labels]} (sequence classification),
 *                 {@code [batch, seq, labels]} (token classification) or {@code [batch, seq, vocab]}
 *                 (causal LM)
 * @param backbone the backbone's output underneath (last hidden state, and the hidden states and
 *                 attention probabilities when the inputs asked for them)
 */
public record HeadOutput(Tensor logits, BackboneOutput backbone) {
    public HeadOutput {
        if (logits == null || backbone == null) {
            throw new IllegalArgumentException("a head output needs logits and the backbone output");
        }
    }
}
