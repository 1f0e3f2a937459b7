package org.peft4j.core.model;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.tensor.Tensor;

/**
 * The transformer body of a model family (BERT's encoder, GPT-2's and LLaMA's decoder stacks)
 * without any task head. Task heads (sequence classification, causal LM) sit on top of it;
 * prompt tuning, P-tuning, prefix tuning and distillation use only this interface.
 *
 * <p>{@link #embed} gives the word embeddings alone: whatever the family adds before the first
 * layer (learned positions, token types, the embedding layer norm, dropout) is added by
 * {@link #forward}, over the whole input including any virtual tokens a prompt method put in
 * front, exactly as Hugging Face models treat {@code inputs_embeds}.
 *
 * <p>Implemented by {@code BertModel} (BERT, MiniLM, BGE), {@code Gpt2Model} and {@code LlamaModel}
 * (LLaMA, Mistral, Qwen2). Task heads implement {@link HeadModel}: {@code backbone()} plus
 * {@code forward(BackboneInputs)} → {@link HeadOutput} (logits and this backbone's output).
 */
public interface Backbone {

    /** Word embeddings {@code [batch, seq, hidden]} of token ids {@code [batch, seq]}. */
    Tensor embed(INDArray ids);

    /** Runs the stack; see {@link BackboneInputs} for what can be passed in. */
    BackboneOutput forward(BackboneInputs inputs);

    int hiddenSize();

    int numLayers();

    int numAttentionHeads();

    int numKeyValueHeads();

    int headDim();

    /** Largest position the model has (learned position tables, rotary limit from the config). */
    int maxPositions();

    int vocabSize();

    /** True for decoders (causal self-attention). */
    boolean isCausal();
}
