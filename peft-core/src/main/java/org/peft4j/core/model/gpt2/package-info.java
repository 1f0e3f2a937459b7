/**
 * GPT-2 ({@code GPT2LMHeadModel}): {@link org.peft4j.core.model.gpt2.Gpt2Config} from
 * {@code config.json}, {@link org.peft4j.core.model.gpt2.Gpt2LMHeadModel} with Hugging Face
 * parameter names (Conv1D weights kept {@code [in, out]}, tied {@code lm_head}).
 */
package org.peft4j.core.model.gpt2;
