package org.peft4j.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.tensor.Tensor;

/**
 * A token lookup table {@code [num, dim]}: {@link Embedding}, or an adapter layer wrapping one
 * (LoRA's embedding layer). Models ask their children for this type, not for {@link Embedding},
 * so an adapter that replaces the table module keeps the model working.
 */
public interface EmbeddingLayer {
    /** Rows for integer {@code ids} of any shape → {@code ids.shape + [dim]}. */
    Tensor forward(INDArray ids);

    /** The table {@code [num, dim]} (for a wrapper: the wrapped table, e.g. for a tied LM head). */
    Parameter weight();

    int numEmbeddings();

    int embeddingDim();

    /** The padding row, or -1. */
    int paddingIdx();
}
