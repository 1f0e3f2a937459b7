package org.peft4j.prompt;

import org.peft4j.core.model.Backbone;
import org.peft4j.core.nn.EmbeddingLayer;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.tensor.Rng;

/**
 * P-tuning ({@code P_TUNING}, PEFT's {@code PromptEncoderConfig}): as prompt tuning, but the
 * virtual tokens are the output of a trainable encoder (MLP, or bidirectional LSTM then MLP)
 * over {@code n} learned embeddings. Only the output is saved as {@code prompt_embeddings}.
 */
public final class PTuningMethod extends PromptTuningMethod {
    @Override
    public String peftType() {
        return "P_TUNING";
    }

    @Override
    public Class<? extends PeftConfig> configClass() {
        return PromptEncoderConfig.class;
    }

    @Override
    protected void fillDefaults(PromptLearningConfig config, Backbone b) {
        PromptEncoderConfig c = (PromptEncoderConfig) config;
        if (c.encoderHiddenSize() == null) {
            c.setEncoderHiddenSize(b.hiddenSize());
        }
    }

    @Override
    protected PromptSource newSource(PromptLearningConfig config, Backbone b, EmbeddingLayer words, Rng rng) {
        PromptEncoderConfig c = (PromptEncoderConfig) config;
        int n = c.totalVirtualTokens();
        int d = b.hiddenSize();
        int h = c.encoderHiddenSize() == null ? d : c.encoderHiddenSize();
        return c.encoderType() == PromptEncoderConfig.EncoderType.LSTM
                ? new PromptSource.LstmEncoder(n, d, h, c.encoderNumLayers(), c.encoderDropout(), rng)
                : new PromptSource.Mlp(n, d, h, rng);
    }
}
