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

    /**
     * The backbone on {@code inputs} (after the installed {@link InputPreparation}, if any), then
     * the head. With a prompt method active, {@code inputs} are the user's: the virtual tokens or
     * prefix are added here, and the logits of a causal LM then cover virtual + real positions.
     */
    HeadOutput forward(BackboneInputs inputs);

    /**
     * Installs (or, with null, removes) the preparation every forward of this model runs first.
     * Heads that cannot run one (wrappers, test doubles) keep the default, which refuses.
     */
    default void setInputPreparation(InputPreparation preparation) {
        if (preparation != null) {
            throw new UnsupportedOperationException(getClass().getSimpleName()
                    + " does not run input preparations (prompt tuning, P-tuning, prefix tuning)");
        }
    }

    /**
     * True for encoder-decoder models (T5): prompt methods then follow PEFT's
     * {@code num_transformer_submodules = 2} layout.
     */
    default boolean isEncoderDecoder() {
        return false;
    }

    /** The installed preparation, or null. */
    default InputPreparation inputPreparation() {
        return null;
    }
}
