/**
 * Weight quantization and QLoRA: bitsandbytes-exact NF4 / FP4 block quantization (with double
 * quantization of the block scales) and LLM.int8-style row-wise int8, a {@link org.peft4j.quant.QuantizedLinear}
 * layer that keeps only codes and scales, and LoRA on top of it.
 *
 * <h2>Pieces</h2>
 * <ul>
 *   <li>{@link org.peft4j.quant.Quantized4bit} / {@link org.peft4j.quant.QuantizedInt8}: the formats
 *       ({@link org.peft4j.quant.QuantizedTensor}), their exact rounding rules and their
 *       bitsandbytes state-dict layout; {@link org.peft4j.quant.QuantMaps}: the code tables.</li>
 *   <li>{@link org.peft4j.quant.QuantizedLinear}: forward = dequantize into a reusable per-shape
 *       fp32 scratch buffer + one GEMM; backward = input (and bias) gradient only.</li>
 *   <li>{@link org.peft4j.quant.Quantizer}: quantize a loaded model in place
 *       ({@link org.peft4j.quant.QuantConfig}: type, block size, double quantization, targets; the
 *       output head stays fp32 by default).</li>
 *   <li>{@link org.peft4j.quant.QuantizedModels}: quantize while loading (layer by layer for the
 *       LLaMA family, so the fp32 model is never whole in memory), save and load quantized folders
 *       ({@code config.json} with {@code quantization_config}, bitsandbytes key suffixes
 *       {@code weight.absmax}, {@code weight.quant_map}, {@code weight.nested_absmax},
 *       {@code weight.nested_quant_map}, {@code weight.quant_state.bitsandbytes__nf4}, {@code SCB}).</li>
 *   <li>{@link org.peft4j.quant.QLora}: LoRA on a quantized model ({@code Peft.apply} works directly;
 *       LoRA wraps {@code QuantizedLinear} as it wraps any core {@code LinearLayer}), merging with
 *       dequantization and optional re-quantization.</li>
 *   <li>{@link org.peft4j.quant.QuantizeCommand}: the implementation of {@code peft4j quantize}.</li>
 * </ul>
 *
 * <h2>QLoRA in four lines</h2>
 * <pre>{@code
 * LlamaForCausalLM model = QuantizedModels.loadLlama(dir, QuantConfig.nf4());   // streams, NF4 + double quant
 * PeftModel pm = Peft.apply(model, LoraConfig.builder().r(64).loraAlpha(16).allLinear().build());
 * new Trainer(pm, pm.trainableParameters(), loss, eval, config).fit(loader);    // only the factors train
 * pm.save(adapterDir);                                                          // an ordinary PEFT LoRA folder
 * }</pre>
 */
package org.peft4j.quant;
