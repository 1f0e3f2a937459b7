package org.peft4j.core.model.decoder;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.model.CheckpointSource;
import org.peft4j.core.model.LayerLoader;
import org.peft4j.core.model.ModelFamily;
import org.peft4j.core.model.WeightSource;
import org.peft4j.core.nn.Module;
import org.peft4j.core.tensor.Rng;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.BiConsumer;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * A decoder-only {@link ModelFamily}: what differs between the decoder families (config parser,
 * tie flag, base-model prefix, ignorable keys, constructor, whether it builds layer by layer) is
 * given to the constructor; making a model fresh ({@link #random}) and loading it strictly from a
 * Hugging Face folder ({@link #load(Path, long)}, {@link #load(Path, long, LayerLoader)}) are shared.
 * The model is built straight from a {@link CheckpointSource}, so no weight is allocated twice.
 *
 * @param <C> the family's config type
 * @param <M> the family's model type
 */
public abstract class DecoderFamily<C, M extends DecoderLM> implements ModelFamily<C> {

    /** A family's model constructor. */
    @FunctionalInterface
    public interface Factory<C, M extends DecoderLM> {
        /**
         * @param config       the parsed config
         * @param sourceConfig the folder's {@code config.json} (kept for its unknown keys when saving), or null for a fresh model
         * @param weights      every parameter's initial value by Hugging Face name
         * @param dropout      the dropout masks' generator
         * @param afterLayer   when non-null (streaming families only), called with each decoder layer's
         *                     parameter prefix ({@code "model.layers.3."}) and the layer right after it is
         *                     built, before the next; its placeholder weights are then zeros, not random
         */
        M create(C config, ObjectNode sourceConfig, WeightSource weights, Rng dropout, BiConsumer<String, Module> afterLayer);
    }

    private final String name;
    private final Class<M> modelClass;
    private final List<String> modelTypes;
    private final Function<ConfigFields, C> parse;
    private final Predicate<C> tiedHead;
    private final String basePrefix;
    private final Predicate<String> ignorable;
    private final boolean streams;
    private final Factory<C, M> factory;

    /**
     * @param modelClass the family's model class (its instances' configs are {@link DecoderLM#configJson})
     * @param parse      reads and validates the family's config from {@code config.json}'s fields
     * @param tiedHead   whether a config ties {@code lm_head} to the token embedding (a checkpoint's
     *                   {@code lm_head.weight} is then accepted and ignored)
     * @param basePrefix the base-model prefix that bare checkpoints lack ({@code "transformer."}, {@code "model."})
     * @param ignorable  checkpoint keys known to carry no weights (buffers of older files)
     * @param streams    whether {@code factory} calls its {@code afterLayer} hook for every layer
     */
    protected DecoderFamily(String name, Class<M> modelClass, List<String> modelTypes, Function<ConfigFields, C> parse,
                            Predicate<C> tiedHead, String basePrefix, Predicate<String> ignorable, boolean streams,
                            Factory<C, M> factory) {
        this.name = name;
        this.modelClass = modelClass;
        this.modelTypes = List.copyOf(modelTypes);
        this.parse = parse;
        this.tiedHead = tiedHead;
        this.basePrefix = basePrefix;
        this.ignorable = ignorable;
        this.streams = streams;
        this.factory = factory;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public List<String> modelTypes() {
        return modelTypes;
    }

    @Override
    public Kind kind() {
        return Kind.DECODER;
    }

    @Override
    public C parseConfig(ObjectNode configJson, String source) {
        return parse.apply(ConfigFields.of(configJson, source));
    }

    @Override
    public List<String> checkpointPrefixes() {
        return List.of(basePrefix);
    }

    /** The family's buffers, and {@code lm_head.weight} when the config ties the head (transformers may still write it). */
    @Override
    public Predicate<String> ignoredKeys(C config) {
        return tiedHead.test(config) ? ignorable.or("lm_head.weight"::equals) : ignorable;
    }

    @Override
    public boolean streamsLayers() {
        return streams;
    }

    /** {@link DecoderLM#configJson} of a model of this family's class, or the config of a classifier on this family's decoder. */
    @Override
    public Optional<ObjectNode> configJson(Module model) {
        if (model instanceof DecoderForSequenceClassification c && modelTypes.contains(c.modelType())) {
            return Optional.of(c.configJson());
        }
        return modelClass.isInstance(model) ? Optional.of(modelClass.cast(model).configJson()) : Optional.empty();
    }

    /** A freshly initialised model (HF's initialisation from {@code seed}, dropout from a fork of it), in training mode. */
    public M random(C config, long seed) {
        Rng rng = new Rng(seed);
        M m = factory.create(config, null, WeightSource.random(rng), rng.fork(), null);
        m.train();
        return m;
    }

    /**
     * {@link #random}: a decoder's skeleton needs nothing from the checkpoint; when
     * {@code architectures} names a sequence classifier ({@code GPT2ForSequenceClassification}, …),
     * a {@link DecoderForSequenceClassification} on it (labels and {@code pad_token_id} from the config).
     */
    @Override
    public Module skeleton(C config, ObjectNode configJson, Predicate<String> checkpointHas, long seed) {
        M lm = random(config, seed);
        if (configJson != null && DecoderForSequenceClassification.isSequenceClassification(configJson)) {
            return DecoderForSequenceClassification.withNewHead(lm, DecoderForSequenceClassification.labelsOf(configJson),
                    DecoderForSequenceClassification.padTokenIdOf(configJson), new Rng(seed).fork());
        }
        return lm;
    }

    /**
     * Loads a Hugging Face folder strictly ({@link CheckpointSource}: keys with or without the
     * base-model prefix, a tied head's {@code lm_head.weight} and the ignorable buffers accepted,
     * every other key used), in eval mode as after HF's {@code from_pretrained}.
     *
     * @throws IllegalArgumentException naming the folder and every missing/unexpected key or
     *         shape mismatch, or the config file and its missing keys
     */
    @Override
    public Module load(Path dir, long dropoutSeed) throws IOException {
        return build(dir, dropoutSeed, null);
    }

    /**
     * As {@link #load(Path, long)} for a causal-LM folder; a folder whose {@code architectures}
     * names a sequence classifier is an error naming it.
     */
    public M loadLm(Path dir, long dropoutSeed) throws IOException {
        return requireLm(build(dir, dropoutSeed, null), dir);
    }

    /** As {@link #load(Path, long, LayerLoader)} for a causal-LM folder. */
    public M loadLm(Path dir, long dropoutSeed, LayerLoader loader) throws IOException {
        return requireLm(load(dir, dropoutSeed, loader), dir);
    }

    private M requireLm(Module m, Path dir) {
        if (!modelClass.isInstance(m)) {
            throw new IllegalArgumentException(dir.resolve(HfFolder.CONFIG_FILE) + " describes a " + describe(m)
                    + ", not a causal LM (" + modelClass.getSimpleName() + ")");
        }
        return modelClass.cast(m);
    }

    private static String describe(Module m) {
        return m instanceof DecoderForSequenceClassification c ? c.architecture() : m.getClass().getSimpleName();
    }

    /**
     * As {@link #load(Path, long)}, letting {@code loader} take over parts of the model: a
     * streaming family hands it each decoder layer right after building it (the full fp32 model
     * is never in memory); any other fills its skeleton after one call on the whole model.
     */
    @Override
    public Module load(Path dir, long dropoutSeed, LayerLoader loader) throws IOException {
        if (loader == null) {
            throw new IllegalArgumentException("layer loader must not be null (use load(dir, seed) for a plain load)");
        }
        return streams ? build(dir, dropoutSeed, loader) : ModelFamily.super.load(dir, dropoutSeed, loader);
    }

    /**
     * The causal LM of the folder, or, when {@code architectures} names a sequence classifier, a
     * {@link DecoderForSequenceClassification} holding its decoder keys and {@code score.weight}
     * (the classifier checkpoint has no {@code lm_head}: the LM's head is built from placeholders
     * and dropped).
     */
    private Module build(Path dir, long dropoutSeed, LayerLoader loader) throws IOException {
        ObjectNode raw = (ObjectNode) HfFolder.readConfig(dir);
        C c = parseConfig(raw, dir.resolve(HfFolder.CONFIG_FILE).toString());
        boolean classifier = DecoderForSequenceClassification.isSequenceClassification(raw);
        try (CheckpointSource src = CheckpointSource.open(dir, checkpointPrefixes(), ignoredKeys(c))) {
            BiConsumer<String, Module> afterLayer = loader == null ? null : (prefix, layer) -> {
                Set<String> consumed = loader.load(prefix, layer, src);
                if (consumed != null) {
                    src.markUsed(consumed);
                }
            };
            WeightSource weights = !classifier ? src : (name, shape, init, std, paddingRow) -> name.startsWith("lm_head.")
                    ? org.nd4j.linalg.factory.Nd4j.zeros(org.nd4j.linalg.api.buffer.DataType.FLOAT, shape)
                    : src.get(name, shape, init, std, paddingRow);
            M m = factory.create(c, raw, weights, new Rng(dropoutSeed), afterLayer);
            Module out = classifier ? DecoderForSequenceClassification.fromCheckpoint(m, raw, src) : m;
            src.finish();
            out.eval();
            return out;
        }
    }

    @Override
    public String toString() {
        return "DecoderFamily(" + name + ", " + modelTypes + ")";
    }
}
