/**
 * LoRA, rsLoRA and DoRA adapters, merge/unmerge, multi-adapter models and Hugging Face PEFT
 * adapter folders ({@code peft_type = "LORA"}).
 *
 * <pre>{@code
 * PeftModel pm = Peft.apply(model, LoraConfig.builder()
 *         .r(8).loraAlpha(16).loraDropout(0.1)
 *         .targetModules("query", "value")          // or .allLinear() / .targetModulesRegex(".*\\.q_proj")
 *         .modulesToSave("classifier").taskType(TaskType.SEQ_CLS).seed(42)
 *         .build());
 * pm.printTrainableParameters();                    // trainable params: N || all params: M || trainable%: p
 * optimizer.add(pm.trainableParameters());          // only the adapter (and copies / biases) train
 * ... model.forward(...) as before ...
 * pm.save(dir);                                     // adapter_config.json + adapter_model.safetensors
 * PeftModel again = PeftModel.load(freshBase, dir); // frozen; load(base, dir, "default", true) to train on
 * Module plain = again.mergeAndUnload();
 * }</pre>
 *
 * <p>{@link org.peft4j.lora.LoraMethod} is the {@link org.peft4j.core.peft.PeftMethod} found through
 * {@code ServiceLoader}: injection ({@code LoraMethod}), key forms and trained biases
 * ({@code LoraKeys}), weighted combinations ({@code LoraCombination}). Layers, on the core's
 * {@link org.peft4j.core.peft.BaseAdapterLayer} through {@link org.peft4j.lora.LoraLayer}:
 * {@link org.peft4j.lora.LoraLinear} (any {@link org.peft4j.core.nn.LinearLayer}: Linear, GPT-2
 * Conv1D, quantized layers for QLoRA; plain or DoRA) and {@link org.peft4j.lora.LoraEmbedding}.
 * The branches are fused ops in {@link org.peft4j.lora.LoraOps}.
 */
package org.peft4j.lora;
