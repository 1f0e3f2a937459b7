package org.peft4j.core.train;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Everything an optimizer needs to continue bit-for-bit: its type, per-parameter update
 * counts (the bias-correction step of AdamW, "has a momentum buffer" of SGD), and its state
 * tensors keyed {@code <parameter name>.<slot>} ({@code encoder.x.weight.exp_avg}). Tensors are
 * what a checkpoint stores in {@code optimizer.safetensors}; the counts go to the JSON.
 */
public record OptimizerState(String type, Map<String, Long> steps, Map<String, INDArray> tensors) {

    public OptimizerState {
        if (type == null || type.isEmpty()) {
            throw new IllegalArgumentException("optimizer state type must not be empty");
        }
        steps = Collections.unmodifiableMap(new LinkedHashMap<>(steps));
        tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
    }
}
