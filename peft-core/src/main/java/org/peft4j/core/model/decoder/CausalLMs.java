package org.peft4j.core.model.decoder;

import com.fasterxml.jackson.databind.JsonNode;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.model.gpt2.Gpt2LMHeadModel;
import org.peft4j.core.model.llama.LlamaForCausalLM;

import java.io.IOException;
import java.nio.file.Path;

/** Loads any supported decoder checkpoint folder by its {@code model_type}. */
public final class CausalLMs {
    private CausalLMs() {
    }

    /**
     * {@code gpt2} → {@link Gpt2LMHeadModel}; {@code llama}, {@code mistral}, {@code qwen2} →
     * {@link LlamaForCausalLM}. Any other (or a missing) {@code model_type} is an error naming the folder.
     */
    public static DecoderLM load(Path dir) throws IOException {
        JsonNode cfg = HfFolder.readConfig(dir);
        String type = cfg.path("model_type").asText("");
        switch (type) {
            case "gpt2":
                return Gpt2LMHeadModel.load(dir);
            case "llama":
            case "mistral":
            case "qwen2":
                return LlamaForCausalLM.load(dir);
            default:
                throw new IllegalArgumentException(dir.resolve(HfFolder.CONFIG_FILE) + ": model_type '" + type
                        + "' is not a supported decoder (gpt2, llama, mistral, qwen2)");
        }
    }
}
