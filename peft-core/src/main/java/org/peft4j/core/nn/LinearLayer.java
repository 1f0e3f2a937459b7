package org.peft4j.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What every PEFT method needs from "a linear layer" {@code y = x·Wᵀ + b}, {@code x [..., in]} →
 * {@code [..., out]}, whatever stores the weight: {@link Linear} (fp32, also GPT-2's Conv1D) and
 * peft-quant's {@code QuantizedLinear} (NF4 / FP4 / int8). {@code target_modules = "all-linear"}
 * means every {@code LinearLayer}, and a method that wraps one (LoRA, IA3, ...) works on a 4-bit
 * base exactly as on an fp32 one.
 *
 * <p>The weight is seen as a dense {@code [out, in]} array for merging and weight-based
 * initialisations (DoRA norms, PiSSA/OLoRA); the forward never needs it.
 */
public interface LinearLayer extends UnaryModule {
    int inFeatures();

    int outFeatures();

    /** The bias {@code [out]}, or null. */
    Parameter bias();

    /**
     * The weight as a dense {@code [out, in]} array. For a {@link Linear} it is the live weight (a
     * transposed view for fan-in-fan-out layers; do not write to it, copy it before keeping it);
     * for a quantized layer a fresh dequantized fp32 copy.
     */
    INDArray denseWeight();

    /**
     * Replaces the weight by {@code w [out, in]} (merging an adapter, PiSSA/OLoRA residuals), in
     * place so that anything sharing the weight (a tied LM head) sees the change.
     *
     * @throws IllegalStateException when the storage cannot take a dense update (quantized weights)
     */
    void setDenseWeight(INDArray w);

    /** True when the stored weight is {@code [in, out]} (GPT-2's Conv1D, PEFT's {@code fan_in_fan_out}). */
    default boolean isFanInFanOut() {
        return false;
    }

    /** The floating type tensors that meet this layer's weight should have (FLOAT; DOUBLE in gradient checks). */
    default DataType weightDataType() {
        return DataType.FLOAT;
    }
}
