package org.peft4j.prompt;

import com.fasterxml.jackson.annotation.JsonProperty;

import java.util.Locale;

/**
 * PEFT's {@code PromptEncoderConfig} ({@code peft_type = "P_TUNING"}):
 * {@code encoder_reparameterization_type} ({@code MLP} or {@code LSTM}), {@code encoder_hidden_size}
 * (default: {@code token_dim}), {@code encoder_num_layers} (LSTM layers; PEFT's MLP always has
 * three linear layers), {@code encoder_dropout}.
 */
public final class PromptEncoderConfig extends PromptLearningConfig {
    public enum EncoderType { MLP, LSTM }

    @JsonProperty("encoder_reparameterization_type")
    private String encoderReparameterizationType = "MLP";
    @JsonProperty("encoder_hidden_size")
    private Integer encoderHiddenSize;
    @JsonProperty("encoder_num_layers")
    private int encoderNumLayers = 2;
    @JsonProperty("encoder_dropout")
    private double encoderDropout = 0.0;

    @Override
    public String peftType() {
        return "P_TUNING";
    }

    public EncoderType encoderType() {
        try {
            return EncoderType.valueOf(encoderReparameterizationType.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException | NullPointerException e) {
            throw new IllegalArgumentException("encoder_reparameterization_type must be MLP or LSTM, got "
                    + encoderReparameterizationType);
        }
    }

    public PromptEncoderConfig setEncoderType(EncoderType t) {
        this.encoderReparameterizationType = t.name();
        return this;
    }

    public Integer encoderHiddenSize() {
        return encoderHiddenSize;
    }

    public PromptEncoderConfig setEncoderHiddenSize(int h) {
        this.encoderHiddenSize = h;
        return this;
    }

    public int encoderNumLayers() {
        return encoderNumLayers;
    }

    public PromptEncoderConfig setEncoderNumLayers(int n) {
        this.encoderNumLayers = n;
        return this;
    }

    public double encoderDropout() {
        return encoderDropout;
    }

    public PromptEncoderConfig setEncoderDropout(double p) {
        this.encoderDropout = p;
        return this;
    }

    @Override
    public void validate() {
        super.validate();
        encoderType();
        if (encoderHiddenSize != null && encoderHiddenSize <= 0) {
            throw new IllegalArgumentException("encoder_hidden_size must be positive, got " + encoderHiddenSize);
        }
        if (encoderNumLayers <= 0) {
            throw new IllegalArgumentException("encoder_num_layers must be positive, got " + encoderNumLayers);
        }
        if (encoderDropout < 0 || encoderDropout >= 1) {
            throw new IllegalArgumentException("encoder_dropout must be in [0, 1), got " + encoderDropout);
        }
    }
}
