package org.peft4j.core.model.decoder;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.io.CheckpointWeights;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.model.WeightSource;
import org.peft4j.core.tensor.Rng;

import java.io.IOException;
import java.nio.file.Path;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * What differs between the decoder families when a model is made fresh or loaded from a
 * Hugging Face folder; the making and loading themselves are shared ({@link #random},
 * {@link #load}).
 *
 * @param parse      reads and validates the family's config from {@code config.json}'s fields
 * @param tiedHead   whether a config ties {@code lm_head} to the token embedding (a checkpoint's
 *                   {@code lm_head.weight} is then accepted and ignored)
 * @param basePrefix the base-model prefix that bare checkpoints lack ({@code "transformer."}, {@code "model."})
 * @param ignorable  checkpoint keys known to carry no weights (buffers of older files)
 * @param factory    builds the model from its parameters' source
 * @param <C>        the family's config type
 * @param <M>        the family's model type
 */
public record DecoderFamily<C, M extends DecoderLM>(Function<ConfigFields, C> parse, Predicate<C> tiedHead,
                                                    String basePrefix, Predicate<String> ignorable,
                                                    Factory<C, M> factory) {

    /** A family's model constructor. */
    @FunctionalInterface
    public interface Factory<C, M extends DecoderLM> {
        /**
         * @param config       the parsed config
         * @param sourceConfig the folder's {@code config.json} (kept for its unknown keys when saving), or null for a fresh model
         * @param weights      every parameter's initial value by Hugging Face name
         * @param dropout      the dropout masks' generator
         */
        M create(C config, ObjectNode sourceConfig, WeightSource weights, Rng dropout);
    }

    /** A freshly initialised model (HF's initialisation from {@code seed}, dropout from a fork of it), in training mode. */
    public M random(C config, long seed) {
        Rng rng = new Rng(seed);
        M m = factory.create(config, null, WeightSource.random(rng), rng.fork());
        m.train();
        return m;
    }

    /**
     * Loads a Hugging Face folder strictly ({@link CheckpointSource}: keys with or without
     * {@link #basePrefix}, a tied head's {@code lm_head.weight} and the {@link #ignorable} buffers
     * accepted, every other key used), in eval mode as after HF's {@code from_pretrained}.
     *
     * @throws IllegalArgumentException naming the folder and every missing/unexpected key or
     *         shape mismatch, or the config file and its missing keys
     */
    public M load(Path dir, long dropoutSeed) throws IOException {
        ObjectNode raw = (ObjectNode) HfFolder.readConfig(dir);
        C c = parse.apply(ConfigFields.of(raw, dir.resolve(HfFolder.CONFIG_FILE).toString()));
        Predicate<String> ignored = tiedHead.test(c) ? ignorable.or("lm_head.weight"::equals) : ignorable;
        try (CheckpointSource src = new CheckpointSource(CheckpointWeights.open(dir), dir.toString(), basePrefix, ignored)) {
            M m = factory.create(c, raw, src, new Rng(dropoutSeed));
            src.finish();
            m.eval();
            return m;
        }
    }
}
