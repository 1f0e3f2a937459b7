package org.peft4j.prompt;

import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * PEFT's {@code PrefixTuningConfig} ({@code peft_type = "PREFIX_TUNING"}): {@code prefix_projection}
 * and {@code encoder_hidden_size} (the projection's hidden width, default: {@code token_dim}).
 * With grouped-query attention {@code token_dim = head_dim * num_key_value_heads} and
 * {@code num_attention_heads = num_key_value_heads}.
 */
public final class PrefixTuningConfig extends PromptLearningConfig {
    @JsonProperty("encoder_hidden_size")
    private Integer encoderHiddenSize;
    @JsonProperty("prefix_projection")
    private boolean prefixProjection;

    @Override
    public String peftType() {
        return "PREFIX_TUNING";
    }

    public boolean prefixProjection() {
        return prefixProjection;
    }

    public PrefixTuningConfig setPrefixProjection(boolean on) {
        this.prefixProjection = on;
        return this;
    }

    public Integer encoderHiddenSize() {
        return encoderHiddenSize;
    }

    public PrefixTuningConfig setEncoderHiddenSize(int h) {
        this.encoderHiddenSize = h;
        return this;
    }

    @Override
    public void validate() {
        super.validate();
        if (encoderHiddenSize != null && encoderHiddenSize <= 0) {
            throw new IllegalArgumentException("encoder_hidden_size must be positive, got " + encoderHiddenSize);
        }
    }
}
