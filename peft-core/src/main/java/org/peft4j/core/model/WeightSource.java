package org.peft4j.core.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.Rng;

import java.util.Arrays;

/**
 * Where a model's constructor gets each parameter's initial value, by Hugging Face name and
 * expected shape, for every model family: fresh values as Hugging Face's {@code _init_weights}
 * makes them ({@link #random}) or a checkpoint's tensors (BERT's validated map, or a
 * {@link CheckpointSource} for the decoders and every skeleton a {@link ModelFamily} fills).
 * Building the model straight from the source never allocates throw-away random tables.
 */
public interface WeightSource {

    /** How a fresh parameter is initialised (Hugging Face's {@code _init_weights}). */
    enum Init {
        /** normal(0, std) with the std given to {@link #get}. */
        NORMAL,
        ZEROS,
        ONES
    }

    /**
     * The value for parameter {@code name} of shape {@code shape}. For a fresh weight {@code init}
     * says how it is made, {@code std} is the {@link Init#NORMAL} standard deviation, and
     * {@code paddingRow >= 0} zeroes that row of a normal table {@code [rows, dim]} (an
     * embedding's {@code padding_idx}); a checkpoint source ignores all three.
     */
    INDArray get(String name, long[] shape, Init init, double std, int paddingRow);

    /** As {@link #get(String, long[], Init, double, int)} with no padding row. */
    default INDArray get(String name, long[] shape, Init init, double std) {
        return get(name, shape, init, std, -1);
    }

    /**
     * Fresh fp32 weights: normal draws from a seeded {@link Rng} in the order the parameters are
     * asked for (a padding row is drawn, then zeroed, so it does not shift later draws), zeros,
     * ones.
     */
    static WeightSource random(Rng rng) {
        return (name, shape, init, std, paddingRow) -> {
            switch (init) {
                case ZEROS:
                    return Nd4j.zeros(DataType.FLOAT, shape);
                case ONES:
                    return Nd4j.ones(DataType.FLOAT, shape);
                default:
                    long n = 1;
                    for (long d : shape) {
                        n *= d;
                    }
                    if (n > Integer.MAX_VALUE) {
                        throw new IllegalArgumentException("parameter " + name + " too large to initialise");
                    }
                    float[] v = new float[(int) n];
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) (rng.nextGaussian() * std);
                    }
                    if (paddingRow >= 0) {
                        int row = Math.toIntExact(shape[shape.length - 1]);
                        Arrays.fill(v, paddingRow * row, (paddingRow + 1) * row, 0f);
                    }
                    return Nd4j.create(v, shape, 'c');
            }
        };
    }
}
