package org.peft4j.core.model.generate;

import org.peft4j.core.tensor.Rng;

import java.util.Arrays;

/**
 * The token-selection steps of {@link Generator}, on one row of logits {@code [vocab]} as a
 * {@code float[]} (filters write {@code -inf} into removed entries, in place). Hugging Face's
 * logits processors are the reference for each rule; they are plain functions here so each can
 * be tested on a hand-made vector.
 */
public final class LogitsProcessing {
    private LogitsProcessing() {
    }

    /**
     * HF {@code RepetitionPenaltyLogitsProcessor}: every distinct token in {@code previous}
     * has its logit divided by {@code penalty} when positive and multiplied by it when negative
     * (so penalty > 1 always makes a repeat less likely). Ids outside the vocabulary are an error.
     */
    public static void repetitionPenalty(float[] logits, int[] previous, int count, double penalty) {
        if (penalty == 1.0) {
            return;
        }
        boolean[] seen = new boolean[logits.length];
        for (int i = 0; i < count; i++) {
            int t = previous[i];
            if (t < 0 || t >= logits.length) {
                throw new IllegalArgumentException("token id " + t + " outside the vocabulary [0, " + logits.length + ")");
            }
            if (seen[t]) {
                continue;
            }
            seen[t] = true;
            float s = logits[t];
            logits[t] = (float) (s < 0 ? s * penalty : s / penalty);
        }
    }

    /** Divides every logit by {@code temperature}. */
    public static void temperature(float[] logits, double temperature) {
        if (temperature == 1.0) {
            return;
        }
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) (logits[i] / temperature);
        }
    }

    /**
     * HF {@code TopKLogitsWarper}: removes every logit strictly below the k-th largest (ties with
     * the k-th are kept, as in HF). {@code k <= 0} or {@code k >= vocab} does nothing.
     */
    public static void topK(float[] logits, int k) {
        if (k <= 0 || k >= logits.length) {
            return;
        }
        float[] sorted = logits.clone();
        Arrays.sort(sorted);
        float kth = sorted[sorted.length - k];
        for (int i = 0; i < logits.length; i++) {
            if (logits[i] < kth) {
                logits[i] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    /**
     * HF {@code TopPLogitsWarper}: keeps the smallest set of most likely tokens whose softmax
     * probability adds up to at least {@code p} (always at least one token), removes the rest.
     * Probabilities are accumulated in double precision.
     */
    public static void topP(float[] logits, double p) {
        if (p >= 1.0) {
            return;
        }
        double[] probs = softmax(logits);
        Integer[] order = new Integer[logits.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        // most likely first; equal logits keep index order so the result is deterministic
        Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
        double mass = 0;
        int keep = 0;
        while (keep < order.length && (keep == 0 || mass < p)) {
            mass += probs[order[keep]];
            keep++;
        }
        for (int i = keep; i < order.length; i++) {
            logits[order[i]] = Float.NEGATIVE_INFINITY;
        }
    }

    /** Softmax in double precision; {@code -inf} entries get probability 0. */
    public static double[] softmax(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : logits) {
            max = Math.max(max, v);
        }
        if (max == Double.NEGATIVE_INFINITY) {
            throw new IllegalArgumentException("every logit is -inf: nothing left to choose from");
        }
        double[] p = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            p[i] = Math.exp(logits[i] - max);
            sum += p[i];
        }
        for (int i = 0; i < p.length; i++) {
            p[i] /= sum;
        }
        return p;
    }

    /** Index of the largest logit (the first one on ties, as torch.argmax). */
    public static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    /** Draws an index from softmax(logits) with one uniform number from {@code rng}. */
    public static int sample(float[] logits, Rng rng) {
        double[] p = softmax(logits);
        double u = rng.nextDouble();
        double c = 0;
        int last = -1;
        for (int i = 0; i < p.length; i++) {
            if (p[i] == 0) {
                continue;
            }
            c += p[i];
            last = i;
            if (u < c) {
                return i;
            }
        }
        return last; // u fell in the rounding gap at the top end
    }

    /**
     * One full selection step: penalty, then greedy arg-max, or temperature, top-k, top-p and a
     * draw. Modifies {@code logits}.
     */
    public static int select(float[] logits, int[] previous, int count, GenerationConfig cfg, Rng rng) {
        repetitionPenalty(logits, previous, count, cfg.repetitionPenalty());
        if (!cfg.doSample()) {
            return argmax(logits);
        }
        temperature(logits, cfg.temperature());
        topK(logits, cfg.topK());
        topP(logits, cfg.topP());
        return sample(logits, rng);
    }
}
