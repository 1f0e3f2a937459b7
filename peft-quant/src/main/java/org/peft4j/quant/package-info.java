/**
 * NF4 / FP4 / int8 block quantization, QuantizedLinear and QLoRA.
 */
package org.peft4j.quant;
