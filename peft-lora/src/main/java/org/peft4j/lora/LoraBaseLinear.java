package org.peft4j.lora;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.nn.UnaryModule;

/**
 * A linear-like layer that is not an {@link org.peft4j.core.nn.Linear} but can carry LoRA (e.g. a
 * quantized linear layer for QLoRA). {@link LoraLinear} calls its forward for the base output and
 * uses the dense weight only for merging, DoRA and the PiSSA/OLoRA initializations.
 */
public interface LoraBaseLinear extends UnaryModule {
    int inFeatures();

    int outFeatures();

    /** The weight as a dense fp32 {@code [out, in]} array (a dequantized copy for quantized layers). */
    INDArray denseWeight();

    /** Replaces the weight by {@code w [out, in]} (merging, PiSSA/OLoRA residuals); may throw UnsupportedOperationException. */
    void setDenseWeight(INDArray w);

    /** The bias {@code [out]}, or null. */
    Parameter bias();
}
