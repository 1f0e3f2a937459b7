package org.peft4j.core.model.llama;

import org.peft4j.core.model.CheckpointSource;
import org.peft4j.core.model.decoder.DecoderFamily;

import java.util.List;
import java.util.function.Predicate;

/**
 * The LLaMA family ({@code llama}, {@code mistral}, {@code qwen2}; {@link LlamaForCausalLM}),
 * registered with the {@link org.peft4j.core.model.ModelFamilies registry}. Bare checkpoints
 * ({@code LlamaModel}) lack the {@code model.} prefix. It streams: a
 * {@link org.peft4j.core.model.LayerLoader} gets each decoder layer ({@code model.layers.N.})
 * right after it is built, so quantizing while loading never holds the fp32 model.
 */
public final class LlamaFamily extends DecoderFamily<LlamaConfig, LlamaForCausalLM> {
    /** Keys known to carry no weights: rotary inverse-frequency buffers of older checkpoints. */
    static final Predicate<String> IGNORABLE = CheckpointSource.keysMatching(
            "(model\\.)?layers\\.\\d+\\.self_attn\\.rotary_emb\\.inv_freq");

    public LlamaFamily() {
        super("llama", LlamaForCausalLM.class, List.of("llama", "mistral", "qwen2"), LlamaConfig::fromFields, LlamaConfig::tieWordEmbeddings,
                "model.", IGNORABLE, true, LlamaForCausalLM::new);
    }
}
