package org.peft4j.core.model.gpt2;

import org.peft4j.core.model.CheckpointSource;
import org.peft4j.core.model.decoder.DecoderFamily;

import java.util.List;
import java.util.function.Predicate;

/**
 * The {@code gpt2} family ({@link Gpt2LMHeadModel}), registered with the
 * {@link org.peft4j.core.model.ModelFamilies registry}. Bare checkpoints ({@code GPT2Model}, e.g.
 * the original hub file) lack the {@code transformer.} prefix. It does not stream: a
 * {@link org.peft4j.core.model.LayerLoader} sees the whole model once (GPT-2 checkpoints are small).
 */
public final class Gpt2Family extends DecoderFamily<Gpt2Config, Gpt2LMHeadModel> {
    /**
     * Checkpoint keys known to carry no weights: the causal-mask buffers older GPT-2 files store
     * ({@code h.N.attn.bias}, {@code h.N.attn.masked_bias}), with or without the {@code transformer.} prefix.
     */
    static final Predicate<String> IGNORABLE = CheckpointSource.keysMatching(
            "(transformer\\.)?h\\.\\d+\\.attn\\.(bias|masked_bias)");

    public Gpt2Family() {
        super("gpt2", Gpt2LMHeadModel.class, List.of("gpt2"), Gpt2Config::fromFields, Gpt2Config::tieWordEmbeddings, "transformer.", IGNORABLE,
                false, (c, raw, weights, dropout, afterLayer) -> new Gpt2LMHeadModel(c, raw, weights, dropout));
    }
}
