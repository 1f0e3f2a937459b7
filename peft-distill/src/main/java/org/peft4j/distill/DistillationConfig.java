package org.peft4j.distill;

import java.util.List;

/**
 * What a distillation run matches between teacher and student, and how the terms are weighted.
 *
 * @param temperature     softening temperature T of the KD term ({@code > 0})
 * @param alpha           weight of the hard-label cross-entropy on labelled examples, in [0, 1];
 *                        the KD term gets {@code 1 − alpha} there and weight 1 on unlabelled ones
 * @param hiddenLoss      how matched hidden states are compared (NONE turns the term off)
 * @param hiddenWeight    weight of the hidden-state term
 * @param layers          matched layers as (teacher, student) indices into Hugging Face's
 *                        {@code hidden_states} (0 = embeddings, L = the last layer)
 * @param attentionWeight weight of the MiniLM-style KL between the last layers' attention
 *                        distributions (0 = off)
 */
public record DistillationConfig(double temperature, double alpha, HiddenLoss hiddenLoss, double hiddenWeight,
                                 List<LayerPair> layers, double attentionWeight) {

    /** How a student hidden state (projected to the teacher's width) is compared to the teacher's. */
    public enum HiddenLoss { NONE, MSE, COSINE }

    /** A teacher {@code hidden_states} index matched to a student one. */
    public record LayerPair(int teacher, int student) {
        public LayerPair {
            if (teacher < 0 || student < 0) {
                throw new IllegalArgumentException("layer indices must be >= 0, got teacher " + teacher + " student " + student);
            }
        }
    }

    public DistillationConfig {
        if (!(temperature > 0)) {
            throw new IllegalArgumentException("distillation temperature must be > 0, got " + temperature);
        }
        if (!(alpha >= 0 && alpha <= 1)) {
            throw new IllegalArgumentException("distillation alpha must be in [0, 1], got " + alpha);
        }
        if (hiddenWeight < 0 || attentionWeight < 0) {
            throw new IllegalArgumentException("distillation weights must be >= 0, got hidden " + hiddenWeight
                    + " attention " + attentionWeight);
        }
        hiddenLoss = hiddenLoss == null ? HiddenLoss.NONE : hiddenLoss;
        layers = layers == null ? List.of() : List.copyOf(layers);
        if (hiddenLoss != HiddenLoss.NONE && layers.isEmpty()) {
            throw new IllegalArgumentException("distillation hidden loss " + hiddenLoss + " needs at least one layer pair");
        }
    }

    /** Logit distillation only (Hinton KD mixed with the hard labels). */
    public static DistillationConfig logits(double temperature, double alpha) {
        return new DistillationConfig(temperature, alpha, HiddenLoss.NONE, 0, List.of(), 0);
    }

    public DistillationConfig withHidden(HiddenLoss loss, double weight, List<LayerPair> pairs) {
        return new DistillationConfig(temperature, alpha, loss, weight, pairs, attentionWeight);
    }

    public DistillationConfig withAttention(double weight) {
        return new DistillationConfig(temperature, alpha, hiddenLoss, hiddenWeight, layers, weight);
    }

    public boolean usesHidden() {
        return hiddenLoss != HiddenLoss.NONE && hiddenWeight > 0;
    }

    public boolean usesAttention() {
        return attentionWeight > 0;
    }
}
