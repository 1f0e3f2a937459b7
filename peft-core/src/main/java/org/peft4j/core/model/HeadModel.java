package org.peft4j.core.model;

/**
 * A task model made of a {@link Backbone} and a head on top (BERT sequence / token
 * classification, the causal LMs). Prompt methods embed ids with {@code backbone().embed},
 * put virtual tokens or a key/value prefix into the {@link BackboneInputs}, and run the whole
 * model with {@link #forward(BackboneInputs)}; distillation reads logits, hidden states and
 * attentions from the same call.
 */
public interface HeadModel {

    Backbone backbone();

    /** The backbone on {@code inputs}, then the head. */
    HeadOutput forward(BackboneInputs inputs);
}
