package org.peft4j.core.model.decoder;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.Rng;

/**
 * Where a model's constructor gets each parameter's initial value, by Hugging Face name and
 * expected shape: fresh values ({@link #random}) or a checkpoint ({@link CheckpointSource}).
 * Building the model straight from the source avoids allocating every weight twice.
 */
public interface WeightSource {

    /** How a fresh parameter is initialised (Hugging Face's {@code _init_weights}). */
    enum Init {
        /** normal(0, std) with the source's std, or the given one. */
        NORMAL,
        ZEROS,
        ONES
    }

    /**
     * The value for parameter {@code name} of shape {@code shape}; {@code std} is used by
     * {@link Init#NORMAL} for fresh weights (ignored when loading).
     */
    INDArray get(String name, long[] shape, Init init, double std);

    /** Fresh weights: normal draws from a seeded {@link Rng} in parameter order, zeros, ones. */
    static WeightSource random(Rng rng) {
        return (name, shape, init, std) -> {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            switch (init) {
                case ZEROS:
                    return Nd4j.zeros(DataType.FLOAT, shape);
                case ONES:
                    return Nd4j.ones(DataType.FLOAT, shape);
                default:
                    if (n > Integer.MAX_VALUE) {
                        throw new IllegalArgumentException("parameter " + name + " too large to initialise");
                    }
                    float[] v = new float[(int) n];
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) (rng.nextGaussian() * std);
                    }
                    return Nd4j.create(v, shape, 'c');
            }
        };
    }
}
