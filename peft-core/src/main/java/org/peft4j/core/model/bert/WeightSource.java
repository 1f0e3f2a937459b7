package org.peft4j.core.model.bert;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.Rng;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * Where a module's initial parameter values come from while the tree is built: Hugging Face's
 * {@code _init_weights} (random) or a checkpoint's tensors (already validated by key and shape).
 * Building from a checkpoint this way never allocates throw-away random tables.
 */
abstract class WeightSource {

    /** How a parameter is initialised when it is not read from a checkpoint. */
    enum Init { NORMAL, ZEROS, ONES }

    /** The value for {@code key} of {@code shape}; {@code paddingRow} >= 0 zeroes that row of a random table. */
    abstract INDArray get(String key, long[] shape, Init init, int paddingRow);

    INDArray get(String key, long[] shape, Init init) {
        return get(key, shape, init, -1);
    }

    /** Hugging Face BERT initialisation: N(0, std) weights and embeddings, zero biases, unit LayerNorm scales. */
    static WeightSource random(Rng rng, double std) {
        return new WeightSource() {
            @Override
            INDArray get(String key, long[] shape, Init init, int paddingRow) {
                switch (init) {
                    case ZEROS:
                        return Nd4j.zeros(DataType.FLOAT, shape);
                    case ONES:
                        return Nd4j.ones(DataType.FLOAT, shape);
                    default:
                        long n = 1;
                        for (long s : shape) {
                            n *= s;
                        }
                        float[] data = new float[Math.toIntExact(n)];
                        for (int i = 0; i < data.length; i++) {
                            data[i] = (float) (rng.nextGaussian() * std);
                        }
                        if (paddingRow >= 0) {
                            int row = Math.toIntExact(shape[shape.length - 1]);
                            Arrays.fill(data, paddingRow * row, (paddingRow + 1) * row, 0f);
                        }
                        return Nd4j.create(data, shape, 'c');
                }
            }
        };
    }

    /** Tensors of a checkpoint (keys already checked against the model); records which were used. */
    static final class FromMap extends WeightSource {
        private final Map<String, INDArray> weights;
        private final Set<String> used = new HashSet<>();
        private final boolean copy;

        /** With {@code copy}, every tensor is duplicated (the map is shared, e.g. a per-JVM cache). */
        FromMap(Map<String, INDArray> weights, boolean copy) {
            this.weights = weights;
            this.copy = copy;
        }

        @Override
        INDArray get(String key, long[] shape, Init init, int paddingRow) {
            INDArray v = weights.get(key);
            if (v == null) {
                throw new IllegalArgumentException("checkpoint has no tensor '" + key + "'");
            }
            if (!Arrays.equals(v.shape(), shape)) {
                throw new IllegalArgumentException("shape mismatch for '" + key + "': expected " + Arrays.toString(shape)
                        + ", found " + Arrays.toString(v.shape()));
            }
            used.add(key);
            DataType t = v.dataType();
            if (t != DataType.FLOAT && t != DataType.DOUBLE) {
                return v.castTo(DataType.FLOAT);
            }
            return copy || v.isView() || v.ordering() != 'c' ? v.dup('c') : v;
        }

        Set<String> used() {
            return used;
        }
    }
}
