package org.peft4j.core.model.decoder;

import com.fasterxml.jackson.databind.JsonNode;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.model.ModelFamilies;
import org.peft4j.core.model.ModelFamily;
import org.peft4j.core.nn.Module;

import java.io.IOException;
import java.nio.file.Path;

/** Loads any registered decoder checkpoint folder by its {@code model_type} ({@link ModelFamilies}). */
public final class CausalLMs {
    private CausalLMs() {
    }

    /** As {@link #load(Path, long)} with dropout seed 0. */
    public static DecoderLM load(Path dir) throws IOException {
        return load(dir, 0L);
    }

    /**
     * The decoder family of {@code model_type} loads the folder: {@code gpt2} →
     * {@link org.peft4j.core.model.gpt2.Gpt2LMHeadModel}; {@code llama}, {@code mistral},
     * {@code qwen2} → {@link org.peft4j.core.model.llama.LlamaForCausalLM}. An unknown (or missing)
     * {@code model_type}, or one that is not a decoder, is an error naming the config file.
     */
    public static DecoderLM load(Path dir, long dropoutSeed) throws IOException {
        String file = dir.resolve(HfFolder.CONFIG_FILE).toString();
        JsonNode config = HfFolder.readConfig(dir);
        ModelFamily<?> family = ModelFamilies.forConfig(config, file);
        if (family.kind() != ModelFamily.Kind.DECODER) {
            throw new IllegalArgumentException(file + ": model_type '" + config.path("model_type").asText()
                    + "' is not a decoder (" + family.kind().name().toLowerCase(java.util.Locale.ROOT) + ")"
                    + " (decoders: " + String.join(", ", ModelFamilies.modelTypes(ModelFamily.Kind.DECODER)) + ")");
        }
        Module m = family.load(dir, dropoutSeed);
        if (!(m instanceof DecoderLM lm)) {
            throw new IllegalArgumentException(file + ": architectures names "
                    + (m instanceof DecoderForSequenceClassification c ? c.architecture() : m.getClass().getSimpleName())
                    + ", not a causal LM (load it with DecoderForSequenceClassification.load)");
        }
        return lm;
    }
}
