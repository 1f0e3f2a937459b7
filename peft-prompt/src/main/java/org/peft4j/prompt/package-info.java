/**
 * Prompt tuning ({@code PROMPT_TUNING}), P-tuning ({@code P_TUNING}, MLP or bidirectional-LSTM
 * prompt encoder) and prefix tuning ({@code PREFIX_TUNING}, with or without
 * {@code prefix_projection}), with Hugging Face PEFT's semantics and files.
 *
 * <p>How they plug in: {@link org.peft4j.prompt.PromptLearningMethod#inject} wraps the model's word
 * embedding in a {@link org.peft4j.prompt.PromptLayer} (an adapter layer that passes the embedding
 * through unchanged and holds each adapter's {@link org.peft4j.prompt.PromptSource}), so the core
 * freezes, trains, switches, deletes and saves them like any adapter. The virtual tokens enter via
 * {@code PeftMethod.prepareInputs}: {@code PeftModel} installs itself as the head's
 * {@code InputPreparation}, so every forward of BERT's classification heads and the causal LMs
 * (and KV-cached generation) goes through it, and so does the decoders' sequence classifier
 * ({@code DecoderForSequenceClassification}, whose last-token index the virtual tokens shift) —
 * no attention or model code is copied. One adapter runs per batch: a mixed-adapter batch
 * ({@code PeftModel.mixedBatch}) is refused, as PEFT refuses {@code adapter_names} for prompt learning.
 * <ul>
 *   <li>prompt tuning / P-tuning: {@code [n, hidden]} vectors in front of the input embeddings
 *       (positions 0..n-1, real tokens n..n+T-1), n ones in front of the attention mask, n zeros in
 *       front of BERT's token types; a causal LM's logits cover n + T positions and the loss gives
 *       the virtual positions label -100 ({@code CausalLm.shiftedLoss(logits, labels, n)}); in
 *       generation the soft prompt is fed once, with the first (uncached) call;</li>
 *   <li>prefix tuning: {@code [n, layers·2·tokenDim]} laid out {@code [layer][key, value][kvHead][headDim]},
 *       {@code tokenDim = headDim·numKeyValueHeads}, passed as per-layer key/value prefixes
 *       ({@code BackboneInputs.withPrefix}: like a KV cache, no rotary), real tokens at n..n+T-1.</li>
 * </ul>
 *
 * <p>Files: {@code adapter_config.json} with PEFT's keys and {@code adapter_model.safetensors} with
 * one tensor, {@code prompt_embeddings} (the encoder's output; plus any {@code modules_to_save}
 * tensors), so PEFT and peft4j load it without an encoder. peft4j also writes
 * {@value org.peft4j.prompt.PromptLearningMethod#ENCODER_FILE} for P-tuning and projected prefixes:
 * the encoder's weights under PEFT's module names ({@code embedding.weight}, {@code mlp_head.0.weight},
 * {@code lstm_head.weight_ih_l0}, {@code transform.0.weight}, ...), ignored by PEFT;
 * {@code PeftModel.load(model, dir, name, true)} rebuilds the encoder from it to resume training.
 */
package org.peft4j.prompt;
