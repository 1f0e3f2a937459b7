package org.peft4j.core.model.t5;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.model.CheckpointSource;
import org.peft4j.core.model.ModelFamily;
import org.peft4j.core.model.decoder.ConfigFields;
import org.peft4j.core.nn.Module;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.model.WeightSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;

/**
 * The T5 family ({@code t5}, {@code mt5}: {@link T5ForConditionalGeneration}), registered with the
 * {@link org.peft4j.core.model.ModelFamilies registry}. Strict loading: every parameter needs its
 * HF key; the only keys skipped are the tied duplicates ({@code encoder.embed_tokens.weight},
 * {@code decoder.embed_tokens.weight}, and {@code lm_head.weight} when tied) and the unused
 * {@code decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight} of the original
 * checkpoints (HF ignores it too).
 */
public final class T5Family implements ModelFamily<T5Config> {
    static final Predicate<String> IGNORABLE = CheckpointSource.keysMatching(
            "(encoder|decoder)\\.embed_tokens\\.weight|decoder\\.block\\.0\\.layer\\.1\\.EncDecAttention\\.relative_attention_bias\\.weight");

    @Override
    public String name() {
        return "t5";
    }

    @Override
    public List<String> modelTypes() {
        return List.of("t5", "mt5");
    }

    @Override
    public Kind kind() {
        return Kind.ENCODER_DECODER;
    }

    @Override
    public T5Config parseConfig(ObjectNode configJson, String source) {
        return T5Config.fromFields(ConfigFields.of(configJson, source));
    }

    @Override
    public Module skeleton(T5Config config, ObjectNode configJson, Predicate<String> checkpointHas, long seed) {
        Rng rng = new Rng(seed);
        T5ForConditionalGeneration m = new T5ForConditionalGeneration(config, configJson, WeightSource.random(rng), rng.fork());
        m.train();
        return m;
    }

    @Override
    public List<String> checkpointPrefixes() {
        return List.of();
    }

    @Override
    public Predicate<String> ignoredKeys(T5Config config) {
        return config.tieWordEmbeddings() ? IGNORABLE.or("lm_head.weight"::equals) : IGNORABLE;
    }

    @Override
    public T5ForConditionalGeneration load(Path dir, long seed) throws IOException {
        return (T5ForConditionalGeneration) load(dir, seed, (prefix, layer, source) -> null);
    }

    @Override
    public Optional<ObjectNode> configJson(Module model) {
        return model instanceof T5ForConditionalGeneration t ? Optional.of(t.configJson()) : Optional.empty();
    }
}
