package org.peft4j.core.model.bert;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.WeightSource;

import java.util.Arrays;
import java.util.Map;

/**
 * A {@link WeightSource} over a checkpoint's tensors whose keys were already checked against the
 * model ({@link BertCheckpoint#checkKeys}); a key or shape that still does not fit fails at once.
 */
final class MapSource implements WeightSource {
    private final Map<String, INDArray> weights;
    private final boolean copy;

    /** With {@code copy}, every tensor is duplicated (the map is shared, e.g. a per-JVM cache). */
    MapSource(Map<String, INDArray> weights, boolean copy) {
        this.weights = weights;
        this.copy = copy;
    }

    @Override
    public INDArray get(String key, long[] shape, Init init, double std, int paddingRow) {
        INDArray v = weights.get(key);
        if (v == null) {
            throw new IllegalArgumentException("checkpoint has no tensor '" + key + "'");
        }
        if (!Arrays.equals(v.shape(), shape)) {
            throw new IllegalArgumentException("shape mismatch for '" + key + "': expected " + Arrays.toString(shape)
                    + ", found " + Arrays.toString(v.shape()));
        }
        DataType t = v.dataType();
        if (t != DataType.FLOAT && t != DataType.DOUBLE) {
            return v.castTo(DataType.FLOAT);
        }
        return copy || v.isView() || v.ordering() != 'c' ? v.dup('c') : v;
    }
}
