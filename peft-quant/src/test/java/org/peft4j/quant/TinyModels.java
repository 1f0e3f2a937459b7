package org.peft4j.quant;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.model.decoder.ConfigFields;
import org.peft4j.core.model.llama.LlamaConfig;
import org.peft4j.core.model.llama.LlamaForCausalLM;

import java.io.IOException;
import java.nio.file.Path;

/** Small randomly initialised models for the tests. */
final class TinyModels {
    private TinyModels() {
    }

    static LlamaConfig llamaConfig(int vocab, int hidden, int inter, int layers, int heads, int kvHeads) {
        ObjectNode n = JsonFiles.mapper().createObjectNode();
        n.put("model_type", "llama");
        n.put("vocab_size", vocab);
        n.put("hidden_size", hidden);
        n.put("intermediate_size", inter);
        n.put("num_hidden_layers", layers);
        n.put("num_attention_heads", heads);
        n.put("num_key_value_heads", kvHeads);
        n.put("max_position_embeddings", 64);
        n.put("rms_norm_eps", 1e-5);
        n.put("initializer_range", 0.05);
        return LlamaConfig.fromFields(ConfigFields.of(n, "test"));
    }

    /** A 2-layer LLaMA with grouped-query attention: vocab 96, hidden 64, intermediate 160. */
    static LlamaForCausalLM llama(long seed) {
        LlamaForCausalLM m = LlamaForCausalLM.random(llamaConfig(96, 64, 160, 2, 4, 2), seed);
        m.eval();
        return m;
    }

    /** Saves {@link #llama(long)} to {@code dir} (sharded when {@code maxShardBytes} is small) and returns it. */
    static LlamaForCausalLM savedLlama(Path dir, long seed, long maxShardBytes) throws IOException {
        LlamaForCausalLM m = llama(seed);
        m.save(dir, maxShardBytes);
        return m;
    }

    /** Token ids {@code [batch, seq]} (INT64) drawn with a fixed pattern. */
    static INDArray ids(int batch, int seq, int vocab, int salt) {
        long[] v = new long[batch * seq];
        for (int i = 0; i < v.length; i++) {
            v[i] = (i * 37L + salt * 11L + (long) i * i) % vocab;
        }
        return Nd4j.createFromArray(v).reshape(batch, seq).castTo(DataType.INT64);
    }
}
