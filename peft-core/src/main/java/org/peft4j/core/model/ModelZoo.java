package org.peft4j.core.model;

import org.peft4j.core.io.OnnxReader;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.model.bert.BertOnnxImport;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tokenizer.HfTokenizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.ref.SoftReference;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The real checkpoints bundled through Maven Central (the {@code dev.langchain4j} embedding
 * jars, which carry an ONNX export and a {@code tokenizer.json} at their root): loaded offline
 * into a {@link BertModel} with its configuration and tokenizer in one call.
 *
 * <ul>
 *   <li>{@link #miniLmL6()}: sentence-transformers {@code all-MiniLM-L6-v2} (6 layers, hidden 384,
 *       12 heads, 22.6M parameters without the pooler) — the student / main model;</li>
 *   <li>{@link #bgeSmall()}: BAAI {@code bge-small-en-v1.5} (12 layers, hidden 384, 33.2M
 *       parameters, same vocabulary) — the teacher.</li>
 * </ul>
 * Neither export has pooler weights, so their configs say {@code classifier_pooling = mean}.
 * The parsed ONNX weights are cached per JVM (softly referenced); every model returned owns
 * its own copy, so training one never changes another. Models are returned in eval mode (as
 * {@code from_pretrained} does); call {@code train()} before fine-tuning.
 */
public final class ModelZoo {
    private static final Logger LOG = LoggerFactory.getLogger(ModelZoo.class);

    /** Name of the MiniLM checkpoint (also its resource prefix). */
    public static final String MINILM_L6 = "all-minilm-l6-v2";
    /** Name of the BGE-small checkpoint (also its resource prefix). */
    public static final String BGE_SMALL = "bge-small-en-v1.5";
    /** Every bundled checkpoint name. */
    public static final List<String> NAMES = List.of(MINILM_L6, BGE_SMALL);

    private static final Map<String, SoftReference<BertOnnxImport.BertWeights>> CACHE = new HashMap<>();

    private ModelZoo() {
    }

    /**
     * A bundled model with its configuration and tokenizer. Close it to release the tokenizer's
     * native handle.
     */
    public record Pretrained(String name, BertModel model, BertConfig config, HfTokenizer tokenizer) implements AutoCloseable {
        @Override
        public void close() {
            tokenizer.close();
        }
    }

    /** all-MiniLM-L6-v2; dropout masks seeded with 0. */
    public static Pretrained miniLmL6() {
        return load(MINILM_L6, new Rng(0));
    }

    /** all-MiniLM-L6-v2 with dropout masks drawn from {@code rng}. */
    public static Pretrained miniLmL6(Rng rng) {
        return load(MINILM_L6, rng);
    }

    /** bge-small-en-v1.5; dropout masks seeded with 0. */
    public static Pretrained bgeSmall() {
        return load(BGE_SMALL, new Rng(0));
    }

    /** bge-small-en-v1.5 with dropout masks drawn from {@code rng}. */
    public static Pretrained bgeSmall(Rng rng) {
        return load(BGE_SMALL, rng);
    }

    /** A bundled model by name ({@link #NAMES}). */
    public static Pretrained load(String name, Rng rng) {
        BertOnnxImport.BertWeights w = weights(name);
        BertModel model = BertModel.fromWeightsCopy(w.config(), w.weights(), resource(name, ".onnx"), rng);
        model.eval();
        return new Pretrained(name, model, w.config(), tokenizer(name));
    }

    /**
     * The imported weights of a bundled model (shared and cached: treat them as read-only).
     *
     * @throws IllegalArgumentException for an unknown name, or when its jar is not on the class path
     */
    public static BertOnnxImport.BertWeights weights(String name) {
        checkName(name);
        synchronized (CACHE) {
            SoftReference<BertOnnxImport.BertWeights> ref = CACHE.get(name);
            BertOnnxImport.BertWeights w = ref == null ? null : ref.get();
            if (w == null) {
                w = BertOnnxImport.bertFromResource(resource(name, ".onnx"));
                CACHE.put(name, new SoftReference<>(w));
            } else {
                LOG.debug("using cached weights of {}", name);
            }
            return w;
        }
    }

    /** A fresh tokenizer of a bundled model (close it when done). */
    public static HfTokenizer tokenizer(String name) {
        checkName(name);
        return HfTokenizer.fromResource(resource(name, "-tokenizer.json"));
    }

    /** The raw ONNX bytes of a bundled model (for an independent runtime). */
    public static byte[] onnxBytes(String name) {
        checkName(name);
        return OnnxReader.readResource(resource(name, ".onnx"));
    }

    /** The class-path resource of a bundled model's file: {@code /<name><suffix>}. */
    static String resource(String name, String suffix) {
        return "/" + name + suffix;
    }

    private static void checkName(String name) {
        if (!NAMES.contains(name)) {
            throw new IllegalArgumentException("unknown bundled model '" + name + "' (available: " + NAMES + ")");
        }
    }
}
