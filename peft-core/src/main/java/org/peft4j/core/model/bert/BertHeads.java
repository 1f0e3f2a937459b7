package org.peft4j.core.model.bert;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.WeightSource;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.tensor.Rng;

import java.util.LinkedHashMap;
import java.util.Map;

/** Shared pieces of the task models ({@code bert} + {@code dropout} + {@code classifier}). */
final class BertHeads {
    private BertHeads() {
    }

    /** A task model's state split into the encoder's keys (prefix {@code bert.} stripped) and the rest. */
    record Split(Map<String, INDArray> encoder, Map<String, INDArray> head) {
    }

    static Split split(Map<String, INDArray> weights) {
        Map<String, INDArray> enc = new LinkedHashMap<>();
        Map<String, INDArray> head = new LinkedHashMap<>();
        for (Map.Entry<String, INDArray> e : weights.entrySet()) {
            if (e.getKey().startsWith("bert.")) {
                enc.put(e.getKey().substring(5), e.getValue());
            } else {
                head.put(e.getKey(), e.getValue());
            }
        }
        return new Split(enc, head);
    }

    /**
     * Checks a task checkpoint strictly: {@code bert.*} against the encoder (pooler optional
     * unless {@code needPooler}) and the head against {@code classifier.weight [C, H]} /
     * {@code classifier.bias [C]}; every problem is named in one error.
     */
    static boolean check(BertConfig c, Map<String, INDArray> weights, boolean needPooler, String source) {
        Split s = split(weights);
        boolean pooler = needPooler || s.encoder().containsKey("pooler.dense.weight") || s.encoder().containsKey("pooler.dense.bias");
        Map<String, long[]> expected = new LinkedHashMap<>();
        BertKeys.expectedShapes(c, pooler).forEach((k, v) -> expected.put("bert." + k, v));
        expected.put("classifier.weight", new long[]{c.numLabels(), c.hiddenSize()});
        expected.put("classifier.bias", new long[]{c.numLabels()});
        BertCheckpoint.checkKeys(expected, weights, source);
        return pooler;
    }

    /** Hugging Face's head initialisation: weight N(0, 0.02), bias 0. */
    static Linear newClassifier(BertConfig c, Rng rng) {
        return BertLayer.linear(WeightSource.random(rng), "classifier", c.hiddenSize(), c.numLabels());
    }

    /** A task model's constructor. */
    @FunctionalInterface
    interface TaskFactory<M> {
        M create(BertConfig config, BertModel bert, Module classifier, Rng rng);
    }

    /**
     * A task model holding a task checkpoint's weights, checked strictly ({@link #check}): the
     * encoder from the {@code bert.*} tensors (with a pooler when {@code needPooler} or when the
     * checkpoint has one), the classifier from {@code classifier.*}; {@code rng} drives dropout.
     */
    static <M> M fromWeights(BertConfig c, Map<String, INDArray> weights, boolean needPooler, String source, Rng rng,
                             TaskFactory<M> factory) {
        boolean pooler = check(c, weights, needPooler, source);
        Split s = split(weights);
        BertModel bert = new BertModel(c, pooler, new MapSource(s.encoder(), false), rng);
        Linear classifier = BertLayer.linear(new MapSource(s.head(), false), "classifier", c.hiddenSize(), c.numLabels());
        return factory.create(c, bert, classifier, rng);
    }
}
