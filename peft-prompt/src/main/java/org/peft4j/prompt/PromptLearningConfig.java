package org.peft4j.prompt;

import com.fasterxml.jackson.annotation.JsonProperty;
import org.peft4j.core.peft.PeftConfig;

/**
 * PEFT's {@code PromptLearningConfig} keys shared by prompt tuning, P-tuning and prefix tuning:
 * {@code num_virtual_tokens}, {@code token_dim}, {@code num_transformer_submodules},
 * {@code num_attention_heads}, {@code num_layers}. The last four are filled from the model when
 * the adapter is applied (as PEFT's {@code _prepare_prompt_learning_config}) and checked against
 * it when a folder is loaded.
 */
public abstract class PromptLearningConfig extends PeftConfig {
    @JsonProperty("num_virtual_tokens")
    protected Integer numVirtualTokens;
    @JsonProperty("token_dim")
    protected Integer tokenDim;
    @JsonProperty("num_transformer_submodules")
    protected Integer numTransformerSubmodules;
    @JsonProperty("num_attention_heads")
    protected Integer numAttentionHeads;
    @JsonProperty("num_layers")
    protected Integer numLayers;

    public int numVirtualTokens() {
        return numVirtualTokens;
    }

    public PromptLearningConfig setNumVirtualTokens(int n) {
        this.numVirtualTokens = n;
        return this;
    }

    public Integer tokenDim() {
        return tokenDim;
    }

    public Integer numTransformerSubmodules() {
        return numTransformerSubmodules;
    }

    public Integer numAttentionHeads() {
        return numAttentionHeads;
    }

    public Integer numLayers() {
        return numLayers;
    }

    void setModelSizes(int tokenDim, int numAttentionHeads, int numLayers, boolean encoderDecoder) {
        this.tokenDim = tokenDim;
        this.numAttentionHeads = numAttentionHeads;
        this.numLayers = numLayers;
        if (numTransformerSubmodules == null) {
            // PEFT: 2 for SEQ_2_SEQ_LM (encoder-decoder), else 1
            this.numTransformerSubmodules = encoderDecoder ? 2 : 1;
        }
    }

    /** Virtual tokens over every transformer submodule (PEFT's {@code total_virtual_tokens}). */
    public int totalVirtualTokens() {
        return numVirtualTokens * (numTransformerSubmodules == null ? 1 : numTransformerSubmodules);
    }

    @Override
    public void validate() {
        super.validate();
        if (numVirtualTokens == null || numVirtualTokens <= 0) {
            throw new IllegalArgumentException("num_virtual_tokens must be a positive integer, got " + numVirtualTokens);
        }
        if (numTransformerSubmodules != null && numTransformerSubmodules != 1 && numTransformerSubmodules != 2) {
            throw new IllegalArgumentException("num_transformer_submodules must be 1 (encoder-only or decoder-only models) or 2"
                    + " (encoder-decoder models), got " + numTransformerSubmodules);
        }
    }
}
