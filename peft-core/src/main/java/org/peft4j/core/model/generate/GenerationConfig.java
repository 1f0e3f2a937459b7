package org.peft4j.core.model.generate;

import java.util.Set;

/**
 * How {@link Generator} picks tokens. Greedy decoding ({@code doSample = false}) takes the arg-max
 * after the repetition penalty, as Hugging Face does (temperature, top-k and top-p only shape
 * sampling). Sampling applies, in HF's order: repetition penalty, temperature, top-k, top-p, then
 * draws from the softmax with a {@link org.peft4j.core.tensor.Rng} seeded by {@code seed}, so the
 * same config, model and prompts always give the same tokens.
 *
 * @param maxNewTokens      tokens to generate per sequence (at most)
 * @param doSample          false: greedy; true: sample
 * @param temperature       divides the logits before sampling (> 0; 1 = unchanged)
 * @param topK              keep the k most likely tokens (0 = off)
 * @param topP              keep the smallest most-likely set whose probability mass is at least p (1 = off)
 * @param repetitionPenalty HF rule for every token already in the sequence: positive logits are
 *                          divided by it, negative ones multiplied (1 = off)
 * @param stopTokenIds      a sequence ends after emitting one of these (it is included in the output)
 * @param padTokenId        fed (and reported) for sequences that already stopped while others go on
 * @param seed              sampling seed
 * @param numBeams          1: greedy or sampling; more: beam search with that many beams (Hugging Face's
 *                          {@code BeamSearchScorer}; not with {@code doSample})
 * @param lengthPenalty     beam search: a finished hypothesis scores {@code sum log p / length^lengthPenalty}
 *                          (length = generated tokens, the stop token included)
 * @param earlyStopping     beam search: stop a row as soon as it has {@code numBeams} finished hypotheses
 *                          (HF {@code early_stopping=True}); false (HF's default) stops when no live beam can
 *                          beat the worst finished one at the current length
 */
public record GenerationConfig(int maxNewTokens, boolean doSample, double temperature, int topK, double topP,
                               double repetitionPenalty, Set<Integer> stopTokenIds, int padTokenId, long seed,
                               int numBeams, double lengthPenalty, boolean earlyStopping) {

    /** The configuration without beam search (one beam, length penalty 1). */
    public GenerationConfig(int maxNewTokens, boolean doSample, double temperature, int topK, double topP,
                            double repetitionPenalty, Set<Integer> stopTokenIds, int padTokenId, long seed) {
        this(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, stopTokenIds, padTokenId, seed, 1, 1.0, false);
    }

    public GenerationConfig {
        if (maxNewTokens < 0) {
            throw new IllegalArgumentException("maxNewTokens must be >= 0, found " + maxNewTokens);
        }
        if (!(temperature > 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a positive number, found " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("topK must be >= 0 (0 = off), found " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("topP must be in (0, 1], found " + topP);
        }
        if (!(repetitionPenalty > 0) || Double.isInfinite(repetitionPenalty)) {
            throw new IllegalArgumentException("repetitionPenalty must be a positive number, found " + repetitionPenalty);
        }
        if (padTokenId < 0) {
            throw new IllegalArgumentException("padTokenId must be >= 0, found " + padTokenId);
        }
        if (numBeams < 1) {
            throw new IllegalArgumentException("numBeams must be >= 1, found " + numBeams);
        }
        if (numBeams > 1 && doSample) {
            throw new IllegalArgumentException("beam search (numBeams " + numBeams + ") does not sample; set doSample false");
        }
        if (!Double.isFinite(lengthPenalty)) {
            throw new IllegalArgumentException("lengthPenalty must be finite, found " + lengthPenalty);
        }
        stopTokenIds = Set.copyOf(stopTokenIds);
    }

    /** Greedy decoding of {@code maxNewTokens} tokens, no penalty, no stop tokens. */
    public static GenerationConfig greedy(int maxNewTokens) {
        return builder().maxNewTokens(maxNewTokens).build();
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        return new Builder().maxNewTokens(maxNewTokens).doSample(doSample).temperature(temperature).topK(topK)
                .topP(topP).repetitionPenalty(repetitionPenalty).stopTokenIds(stopTokenIds).padTokenId(padTokenId)
                .seed(seed).numBeams(numBeams).lengthPenalty(lengthPenalty).earlyStopping(earlyStopping);
    }

    /** Defaults: 20 new tokens, greedy, temperature 1, top-k off, top-p 1, penalty 1, no stop tokens, pad 0, seed 0. */
    public static final class Builder {
        private int maxNewTokens = 20;
        private boolean doSample;
        private double temperature = 1.0;
        private int topK;
        private double topP = 1.0;
        private double repetitionPenalty = 1.0;
        private Set<Integer> stopTokenIds = Set.of();
        private int padTokenId;
        private long seed;
        private int numBeams = 1;
        private double lengthPenalty = 1.0;
        private boolean earlyStopping;

        public Builder numBeams(int v) {
            numBeams = v;
            return this;
        }

        public Builder lengthPenalty(double v) {
            lengthPenalty = v;
            return this;
        }

        public Builder earlyStopping(boolean v) {
            earlyStopping = v;
            return this;
        }

        public Builder maxNewTokens(int v) {
            maxNewTokens = v;
            return this;
        }

        public Builder doSample(boolean v) {
            doSample = v;
            return this;
        }

        public Builder temperature(double v) {
            temperature = v;
            return this;
        }

        public Builder topK(int v) {
            topK = v;
            return this;
        }

        public Builder topP(double v) {
            topP = v;
            return this;
        }

        public Builder repetitionPenalty(double v) {
            repetitionPenalty = v;
            return this;
        }

        public Builder stopTokenIds(Set<Integer> v) {
            stopTokenIds = v;
            return this;
        }

        public Builder stopTokenIds(Integer... v) {
            stopTokenIds = Set.of(v);
            return this;
        }

        public Builder padTokenId(int v) {
            padTokenId = v;
            return this;
        }

        public Builder seed(long v) {
            seed = v;
            return this;
        }

        public GenerationConfig build() {
            return new GenerationConfig(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty,
                    stopTokenIds, padTokenId, seed, numBeams, lengthPenalty, earlyStopping);
        }
    }
}
