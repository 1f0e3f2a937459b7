/**
 * Model families and the interface every method and distillation uses to run them.
 *
 * <ul>
 *   <li>{@link org.peft4j.core.model.Backbone}: the transformer body of a family without a head,
 *       implemented by {@code bert.BertModel} (BERT, MiniLM, BGE), {@code gpt2.Gpt2Model} and
 *       {@code llama.LlamaModel} (LLaMA, Mistral, Qwen2). {@code embed(ids)} gives the word
 *       embeddings only; {@code forward(BackboneInputs)} adds what the family adds before layer 0
 *       (positions, token types, the embedding LayerNorm, dropout) over the whole input and runs
 *       the layers.</li>
 *   <li>{@link org.peft4j.core.model.BackboneInputs}: input embeddings {@code [B, T, H]} (possibly
 *       with virtual tokens in front), the padding mask over prefix + cached + new positions,
 *       token types, the position offset (by default prefix + cached tokens, as Hugging Face
 *       counts a prefix passed as {@code past_key_values}), per-layer key/value prefixes
 *       {@code [B, kvHeads, P, headDim]} (treated as already cached: not rotated, seen by every
 *       token), KV caches, and whether to return hidden states and attention probabilities.</li>
 *   <li>{@link org.peft4j.core.model.BackboneOutput}: the last hidden state, Hugging Face's
 *       {@code hidden_states} (L + 1) and each layer's attention probabilities on request.</li>
 *   <li>{@link org.peft4j.core.model.HeadModel}: a task model on a backbone (BERT sequence and
 *       token classification, the causal LMs, the decoders' sequence classifier; the sequence
 *       classifiers are {@link org.peft4j.core.model.SequenceClassifier}s); {@code forward(BackboneInputs)} returns a
 *       {@link org.peft4j.core.model.HeadOutput} (logits and the backbone's output). The heads'
 *       id-based forwards run the same path: {@code forward(embed(ids), mask)}.</li>
 * </ul>
 *
 * <p>Where things plug in: prompt tuning and P-tuning put virtual tokens in front of
 * {@code embed(ids)} and widen the mask; prefix tuning passes per-layer keys/values; distillation
 * reads logits, hidden states and attentions from {@code HeadModel.forward}. None of them needs a
 * family's internals. The fast FLOAT path (the fused attention op
 * {@link org.peft4j.core.tensor.ScaledDotProductAttention}, the fused residual + LayerNorm) is the
 * default; asking for attention probabilities takes a slower composed, differentiable path.
 */
package org.peft4j.core.model;
