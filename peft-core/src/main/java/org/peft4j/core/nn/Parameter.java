package org.peft4j.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;

/**
 * A learnable tensor owned by a {@link Module}. Its {@code trainable} flag is its
 * {@code requiresGrad}: a frozen parameter never gets a gradient buffer, and optimizers only
 * ever see trainable ones.
 */
public final class Parameter extends Tensor {

    public Parameter(INDArray value) {
        this(value, true);
    }

    public Parameter(INDArray value, boolean trainable) {
        super(widen(value), trainable);
    }

    public boolean isTrainable() {
        return requiresGrad();
    }

    public void setTrainable(boolean trainable) {
        setRequiresGrad(trainable);
    }

    /**
     * Replaces the value (weight loading, merging). The new value must have the same shape;
     * it is widened to fp32 if needed.
     */
    public void setValue(INDArray v) {
        if (!Arrays.equals(v.shape(), shape())) {
            throw new IllegalArgumentException("shape mismatch: parameter has " + Arrays.toString(shape())
                    + ", new value has " + Arrays.toString(v.shape()));
        }
        setValueUnchecked(widen(v));
    }

    /** Replaces the value with one of any shape (e.g. when a module is resized). */
    public void resetValue(INDArray v) {
        setValueUnchecked(widen(v));
        zeroGrad();
    }

    /** fp32 is the compute type; DOUBLE is kept as is (numerical gradient checks), anything else is widened to fp32. */
    private static INDArray widen(INDArray v) {
        DataType t = v.dataType();
        return t == DataType.FLOAT || t == DataType.DOUBLE ? v : v.castTo(DataType.FLOAT);
    }
}
