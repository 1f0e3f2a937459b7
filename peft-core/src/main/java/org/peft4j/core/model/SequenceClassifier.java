package org.peft4j.core.model;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.tensor.Tensor;

import java.util.List;

/**
 * A {@link HeadModel} that maps a token sequence to one logit per class: BERT's
 * {@code BertForSequenceClassification} (pooled vector → {@code classifier}) and the decoders'
 * {@code GPT2ForSequenceClassification} / {@code LlamaForSequenceClassification}
 * ({@link org.peft4j.core.model.decoder.DecoderForSequenceClassification}: the last real token's
 * state → {@code score}). Training, evaluation and prediction (the CLI's {@code train},
 * {@code eval}, {@code predict}) use only this interface.
 */
public interface SequenceClassifier extends HeadModel {

    /**
     * Logits {@code [batch, numLabels]} of token ids {@code [batch, T]}, through any installed
     * prompt method.
     *
     * @param attentionMask {@code [batch, T]} 1 = real token, 0 = padding (null = none)
     * @param tokenTypeIds  BERT's segment ids {@code [batch, T]} (null = zeros; decoders have none and ignore it)
     */
    Tensor classify(INDArray inputIds, INDArray attentionMask, INDArray tokenTypeIds);

    /** The class names in index order ({@code id2label}). */
    List<String> labels();

    default int numLabels() {
        return labels().size();
    }

    /** The name of the head module ({@code classifier} for BERT, {@code score} for the decoders): PEFT's {@code modules_to_save} target. */
    String headName();
}
