package org.peft4j.core.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.nn.Module;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Predicate;

/**
 * One model family: everything the loaders need to know about the {@code config.json}
 * {@code model_type}s it reads — the config parser, a fresh model from a config (the skeleton),
 * the checkpoint key prefixes, the checkpoint keys to ignore, strict loading, whether loading can
 * hand a {@link LayerLoader} one layer at a time (quantizing while loading), and the config of a
 * model to save. Callers never switch on {@code model_type}; they ask {@link ModelFamilies}
 * ({@code CausalLMs}, the CLI and {@code QuantizedModels} all do).
 *
 * <p>A family registers itself: it is a public class with a public no-argument constructor,
 * listed in {@code META-INF/services/org.peft4j.core.model.ModelFamily} of its module and found
 * with {@link java.util.ServiceLoader}. The built-in ones are {@link org.peft4j.core.model.bert.BertFamily}
 * ({@code bert}, also what the bundled MiniLM / BGE checkpoints are), {@link org.peft4j.core.model.gpt2.Gpt2Family}
 * ({@code gpt2}) and {@link org.peft4j.core.model.llama.LlamaFamily} ({@code llama}, {@code mistral}, {@code qwen2}).
 *
 * <p><b>Adding a family</b> (T5, {@code org.peft4j.core.model.t5}, was added this way). Write its package (for T5: a
 * {@code T5Config} parsed from {@code config.json}, the modules, {@code T5ForConditionalGeneration})
 * and one {@code T5Family implements ModelFamily<T5Config>}: {@code modelTypes()} =
 * {@code ["t5"]}, {@code kind()} = {@link Kind#ENCODER_DECODER}, {@code configJson} the config of a
 * {@code T5ForConditionalGeneration}, {@code skeleton} builds the model
 * from the config (HF initialisation, seeded), {@code checkpointPrefixes()} the prefixes a saved
 * checkpoint may lack or add, {@code ignoredKeys} the tied duplicates
 * ({@code encoder.embed_tokens.weight}, {@code decoder.embed_tokens.weight}, {@code lm_head.weight}
 * when tied) and any buffers, {@code load} the strict fp32 load (it may simply be
 * {@code load(dir, seed, (prefix, layer, source) -> null)}: the default
 * {@link #load(Path, long, LayerLoader)} fills the skeleton strictly from a
 * {@link CheckpointSource}); then add the line {@code org.peft4j.core.model.t5.T5Family} to
 * {@code peft-core/src/main/resources/META-INF/services/org.peft4j.core.model.ModelFamily}.
 * Nothing else changes: the registry, {@code QuantizedModels} (quantized folders and quantizing
 * while loading) and the error listing the known types pick it up.
 *
 * @param <C> the family's parsed config type
 */
public interface ModelFamily<C> {

    /** What a family's base model is, which decides the commands and loaders that take it. */
    enum Kind {
        /** Bidirectional encoder ({@code bert}): embeddings and classification heads. */
        ENCODER,
        /** Decoder-only causal LM ({@code gpt2}, {@code llama}, …): a {@code DecoderLM}. */
        DECODER,
        /** Encoder-decoder sequence-to-sequence model (T5). */
        ENCODER_DECODER
    }

    /** A short name for messages, e.g. {@code "llama"}. */
    String name();

    /** The {@code model_type} values of {@code config.json} this family reads (lower case). */
    List<String> modelTypes();

    Kind kind();

    /**
     * Reads and validates the family's config from the content of {@code config.json}; every
     * missing or bad key is an {@link IllegalArgumentException} naming {@code source} (the file).
     */
    C parseConfig(ObjectNode configJson, String source);

    /**
     * A fresh model for {@code config} (Hugging Face's initialisation, seeded), in training mode:
     * the tree that a checkpoint of this family fills. {@code configJson} is the folder's
     * {@code config.json} (its {@code architectures} may pick the task class), and
     * {@code checkpointHas} tells whether the checkpoint to be loaded holds a parameter (resolved
     * with the {@linkplain #checkpointPrefixes() prefixes}), for optional parts such as BERT's
     * pooler; pass {@code k -> false} for a model from the config alone.
     */
    Module skeleton(C config, ObjectNode configJson, Predicate<String> checkpointHas, long seed);

    /**
     * Key prefixes a checkpoint of this family may lack or carry beyond the model's parameter
     * names: {@code "transformer."} for GPT-2 (bare {@code GPT2Model} saves), {@code "model."} for
     * LLaMA, {@code "bert."} for BERT (task checkpoints). Empty when names always match.
     */
    List<String> checkpointPrefixes();

    /**
     * Checkpoint keys that carry no weights of the model and are skipped on load, e.g. the
     * non-persistent buffers older files store ({@code attn.bias}, {@code attn.masked_bias},
     * {@code rotary_emb.inv_freq}, {@code embeddings.position_ids}) and a tied head's duplicate.
     * Any other key that no parameter uses is an error naming it.
     */
    Predicate<String> ignoredKeys(C config);

    /**
     * Loads folder {@code dir} ({@code config.json} + safetensors, single file or sharded)
     * strictly into the model class its config names, in eval mode; {@code seed} seeds the
     * dropout masks.
     *
     * @throws IllegalArgumentException naming the folder and every missing/unexpected key or shape
     *         mismatch, or the config file and its bad keys
     */
    Module load(Path dir, long seed) throws IOException;

    /**
     * Whether {@link #load(Path, long, LayerLoader)} builds the model one layer at a time and hands
     * each layer to the loader before the next exists (so a quantizing loader never holds the
     * full fp32 model). Families that do not stream call the loader once on the whole skeleton.
     */
    default boolean streamsLayers() {
        return false;
    }

    /**
     * Loads {@code dir} letting {@code loader} take over parts of the model first (quantized
     * layers); everything it leaves is filled strictly from the checkpoint. This default builds
     * the {@link #skeleton}, calls the loader once with prefix {@code ""} and the whole model, then
     * fills every remaining parameter through a {@link CheckpointSource} with this family's
     * prefixes and ignored keys; a streaming family overrides it.
     *
     * @throws IllegalArgumentException (a {@link org.peft4j.core.io.CheckpointException}) naming the
     *         folder and every missing/unexpected key or shape mismatch
     */
    default Module load(Path dir, long seed, LayerLoader loader) throws IOException {
        if (loader == null) {
            throw new IllegalArgumentException("layer loader must not be null (use load(dir, seed) for a plain load)");
        }
        ObjectNode raw = ModelFamilies.readConfig(dir);
        C config = parseConfig(raw, dir.resolve(HfFolder.CONFIG_FILE).toString());
        try (CheckpointSource src = CheckpointSource.open(dir, checkpointPrefixes(), ignoredKeys(config))) {
            Module m = skeleton(config, raw, src::has, seed);
            Set<String> consumed = loader.load("", m, src);
            if (consumed != null) {
                src.markUsed(consumed);
            }
            src.fill(m);
            src.finish();
            m.eval();
            return m;
        }
    }

    /**
     * The {@code config.json} body describing {@code model} when it is one of this family's model
     * classes (what a saved folder of it carries, e.g. for quantized saving), else empty.
     */
    Optional<ObjectNode> configJson(Module model);

    /** A fresh model from {@code config.json}'s content alone ({@link #skeleton} with no checkpoint). */
    default Module skeleton(ObjectNode configJson, String source, long seed) {
        return skeleton(parseConfig(configJson, source), configJson, k -> false, seed);
    }
}
