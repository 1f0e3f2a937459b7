package org.peft4j.core.model.decoder;

import java.util.List;

import org.peft4j.core.nn.AttentionContext;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Tensor;

/**
 * One block of a decoder stack (GPT-2's {@code h.N}, LLaMA's {@code layers.N}): hidden states
 * {@code [B, T, hidden]} in and out, attending through the pass's {@link AttentionContext}.
 */
public interface DecoderLayer {
    Tensor forward(Tensor x, AttentionContext ctx);

    /**
     * The decoder families' common body: every layer in order, then the final norm. With
     * {@code hidden} non-null it receives Hugging Face's {@code hidden_states}: the input, each
     * layer's output, the last replaced by the final norm's output (L + 1 entries).
     */
    static Tensor runStack(Tensor x, ModuleList<? extends DecoderLayer> layers, UnaryModule finalNorm, AttentionContext ctx,
                           List<Tensor> hidden) {
        for (int i = 0; i < layers.size(); i++) {
            if (hidden != null) {
                hidden.add(x);
            }
            x = layers.get(i).forward(x, ctx);
        }
        x = finalNorm.forward(x);
        if (hidden != null) {
            hidden.add(x);
        }
        return x;
    }
}
