/**
 * The LLaMA family (LLaMA, Mistral, Qwen2, SmolLM/TinyLlama-style configs):
 * {@link org.peft4j.core.model.llama.LlamaConfig} and {@link org.peft4j.core.model.llama.LlamaForCausalLM}
 * (RMSNorm, rotary positions, grouped-query attention, SwiGLU, optional q/k/v(/o) biases, optional tied head).
 */
package org.peft4j.core.model.llama;
