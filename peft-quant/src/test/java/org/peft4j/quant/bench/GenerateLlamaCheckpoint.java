package org.peft4j.quant.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.io.SafeTensors;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes a randomly initialised LLaMA-style checkpoint folder (Hugging Face layout, sharded: one
 * safetensors file per decoder layer plus one for the embeddings, final norm and head, and
 * {@code model.safetensors.index.json}), generating and writing one shard at a time so generation
 * itself needs about one layer of memory. Weights are N(0, 0.02), norms 1.
 *
 * <p>Default shape: TinyLlama-1.1B (hidden 2048, intermediate 5632, 22 layers, 32 heads, 4 KV
 * heads, vocab 32000): 1,100,048,384 parameters, 4.4 GB. Run (after
 * {@code mvn -o test-compile -pl peft-quant -am}) with the classpath described in
 * {@link LlamaMemoryBench}:
 * <pre>java -cp $CP org.peft4j.quant.bench.GenerateLlamaCheckpoint /tmp/llama-1b [layers hidden intermediate heads kvHeads vocab]</pre>
 */
public final class GenerateLlamaCheckpoint {
    private GenerateLlamaCheckpoint() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args.length > 0 ? args[0] : "/tmp/llama-1b");
        int layers = args.length > 1 ? Integer.parseInt(args[1]) : 22;
        int hidden = args.length > 2 ? Integer.parseInt(args[2]) : 2048;
        int inter = args.length > 3 ? Integer.parseInt(args[3]) : 5632;
        int heads = args.length > 4 ? Integer.parseInt(args[4]) : 32;
        int kv = args.length > 5 ? Integer.parseInt(args[5]) : 4;
        int vocab = args.length > 6 ? Integer.parseInt(args[6]) : 32000;
        int headDim = hidden / heads;
        Files.createDirectories(dir);
        Map<String, String> weightMap = new TreeMap<>();
        long total = 0;
        long params = 0;
        int shards = layers + 1;
        for (int s = 0; s < shards; s++) {
            Map<String, INDArray> t = new LinkedHashMap<>();
            Nd4j.getRandom().setSeed(1000L + s);
            if (s < layers) {
                String p = "model.layers." + s + ".";
                t.put(p + "self_attn.q_proj.weight", randn(hidden, hidden));
                t.put(p + "self_attn.k_proj.weight", randn(kv * headDim, hidden));
                t.put(p + "self_attn.v_proj.weight", randn(kv * headDim, hidden));
                t.put(p + "self_attn.o_proj.weight", randn(hidden, hidden));
                t.put(p + "mlp.gate_proj.weight", randn(inter, hidden));
                t.put(p + "mlp.up_proj.weight", randn(inter, hidden));
                t.put(p + "mlp.down_proj.weight", randn(hidden, inter));
                t.put(p + "input_layernorm.weight", Nd4j.ones(DataType.FLOAT, hidden));
                t.put(p + "post_attention_layernorm.weight", Nd4j.ones(DataType.FLOAT, hidden));
            } else {
                t.put("model.embed_tokens.weight", randn(vocab, hidden));
                t.put("model.norm.weight", Nd4j.ones(DataType.FLOAT, hidden));
                t.put("lm_head.weight", randn(vocab, hidden));
            }
            String name = String.format("model-%05d-of-%05d.safetensors", s + 1, shards);
            SafeTensors.write(dir.resolve(name), t, HfFolder.PT_METADATA);
            for (Map.Entry<String, INDArray> e : t.entrySet()) {
                weightMap.put(e.getKey(), name);
                total += e.getValue().length() * 4;
                params += e.getValue().length();
                e.getValue().close();
            }
            System.out.printf("shard %d/%d written (%,d parameters so far)%n", s + 1, shards, params);
        }
        Map<String, Object> index = new LinkedHashMap<>();
        index.put("metadata", Map.of("total_size", total));
        index.put("weight_map", weightMap);
        JsonFiles.write(dir.resolve(HfFolder.WEIGHTS_INDEX_FILE), index);
        ObjectNode cfg = JsonFiles.mapper().createObjectNode();
        cfg.putArray("architectures").add("LlamaForCausalLM");
        cfg.put("model_type", "llama");
        cfg.put("vocab_size", vocab);
        cfg.put("hidden_size", hidden);
        cfg.put("intermediate_size", inter);
        cfg.put("num_hidden_layers", layers);
        cfg.put("num_attention_heads", heads);
        cfg.put("num_key_value_heads", kv);
        cfg.put("max_position_embeddings", 2048);
        cfg.put("rms_norm_eps", 1e-5);
        cfg.put("rope_theta", 10000.0);
        cfg.put("hidden_act", "silu");
        cfg.put("tie_word_embeddings", false);
        cfg.put("torch_dtype", "float32");
        HfFolder.writeConfig(dir, cfg);
        System.out.printf("wrote %s: %,d parameters, %,d bytes%n", dir, params, total);
    }

    private static INDArray randn(long rows, long cols) {
        return Nd4j.randn(DataType.FLOAT, rows, cols).muli(0.02);
    }
}
