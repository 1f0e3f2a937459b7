package org.peft4j.lora;

import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.LinearLayer;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftMethod;
import org.peft4j.core.peft.TargetMatcher;
import org.peft4j.core.tensor.Rng;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The LoRA method ({@code peft_type = "LORA"}): wraps target {@link LinearLayer}s (fp32, GPT-2
 * Conv1D, quantized: QLoRA) in {@link LoraLinear} and target {@link Embedding}s in
 * {@link LoraEmbedding}; the layers save {@code base_model.model.<path>.lora_A.weight}
 * {@code [r, in]}, {@code …lora_B.weight} {@code [out, r]}, {@code …lora_magnitude_vector}
 * {@code [out]} (DoRA), {@code …lora_embedding_A} {@code [r, vocab]}, {@code …lora_embedding_B}
 * {@code [dim, r]}; the biases chosen by {@code bias} train and save with them ({@link LoraKeys}).
 * Switching, merging, deleting, saving and loading are the core's ({@link org.peft4j.core.peft.PeftModel});
 * weighted combinations are {@link LoraCombination}.
 */
public final class LoraMethod implements PeftMethod {
    private static final Logger LOG = LoggerFactory.getLogger(LoraMethod.class);

    @Override
    public String peftType() {
        return LoraConfig.PEFT_TYPE;
    }

    @Override
    public Class<? extends PeftConfig> configClass() {
        return LoraConfig.class;
    }

    @Override
    public boolean supportsMerge() {
        return true;
    }

    /** Path → LoRA layer, in tree order. */
    static Map<String, LoraLayer> loraLayers(Module model) {
        Map<String, LoraLayer> out = new LinkedHashMap<>();
        for (Map.Entry<String, Module> e : model.namedModules().entrySet()) {
            if (e.getValue() instanceof LoraLayer l) {
                out.put(e.getKey(), l);
            }
        }
        return out;
    }

    /** A generator derived from the adapter seed, the module path and the adapter name (order independent). */
    static Rng rngFor(long seed, String path, String adapter, int stream) {
        long h = seed * 0x9E3779B97F4A7C15L;
        for (byte b : (path + "\u0000" + adapter).getBytes(StandardCharsets.UTF_8)) {
            h = (h ^ (b & 0xff)) * 0x100000001B3L;
        }
        return new Rng(h ^ ((long) stream << 56));
    }

    /**
     * PEFT's {@code TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING} for the families peft4j
     * has, keyed by {@code model_type}: what an adapter without {@code target_modules} targets
     * (and then records in its config, as PEFT does).
     */
    static final java.util.Map<String, List<String>> DEFAULT_TARGETS = java.util.Map.of(
            "t5", List.of("q", "v"), "mt5", List.of("q", "v"), "bert", List.of("query", "value"),
            "gpt2", List.of("c_attn"), "llama", List.of("q_proj", "v_proj"), "mistral", List.of("q_proj", "v_proj"),
            "qwen2", List.of("q_proj", "v_proj"));

    static org.peft4j.core.peft.TargetModules defaultTargets(Module model) {
        String type = org.peft4j.core.model.ModelFamilies.modelTypeOf(model).orElse(null);
        List<String> t = type == null ? null : DEFAULT_TARGETS.get(type);
        if (t == null) {
            throw new IllegalArgumentException("target_modules is not set and LoRA has no default for "
                    + (type == null ? "a " + model.getClass().getSimpleName() : "model_type '" + type + "'")
                    + " (defaults exist for " + new java.util.TreeSet<>(DEFAULT_TARGETS.keySet()) + "); set target_modules");
        }
        return org.peft4j.core.peft.TargetModules.of(t);
    }

    @Override
    public List<String> inject(Module model, PeftConfig config, String adapterName, boolean forLoading) {
        LoraConfig c = (LoraConfig) config;
        if (c.targetModules() == null) {
            c.setTargetModules(defaultTargets(model));
        }
        List<String> targets = TargetMatcher.findTargets(model, c.targetSpec());
        // Check every target before changing anything, so a bad config leaves the model untouched.
        for (String key : targets) {
            Module m = model.get(key);
            boolean ok = m instanceof LoraLinear || m instanceof LoraEmbedding || m instanceof LinearLayer || m instanceof Embedding;
            if (!ok) {
                throw new IllegalArgumentException("target module '" + key + "' is a " + m.getClass().getSimpleName()
                        + "; LoRA supports linear layers (Linear, GPT-2 Conv1D, quantized) and Embedding "
                        + "(target_modules " + c.targetModules() + ")");
            }
            if (c.useDora() && (m instanceof Embedding || m instanceof LoraEmbedding)) {
                throw new IllegalArgumentException("use_dora is not supported for the embedding layer '" + key + "' in peft4j");
            }
            if (m instanceof LoraLayer l && l.adapterNames().contains(adapterName)) {
                throw new IllegalArgumentException("module '" + key + "' already has LoRA adapter '" + adapterName + "'");
            }
        }
        List<String> conv1d = new ArrayList<>();
        for (String key : targets) {
            // a layer already wrapped by an earlier adapter counts by the layer it wraps (a second adapter on
            // GPT-2's Conv1D used to see a LoraLinear here and flip the saved fan_in_fan_out to false)
            Module m = model.get(key);
            while (m instanceof org.peft4j.core.peft.AdapterLayer al) {
                m = al.baseLayer();
            }
            if (m instanceof LinearLayer l && l.isFanInFanOut()) {
                conv1d.add(key);
            }
        }
        boolean fifo = !conv1d.isEmpty();
        if (fifo != c.fanInFanOut()) {
            // as PEFT: each layer's own layout is used and the config flag is corrected (and saved that way)
            LOG.warn("fan_in_fan_out={} does not fit the targets ({}); each layer's own weight layout is used and "
                    + "fan_in_fan_out is set to {}", c.fanInFanOut(),
                    fifo ? "GPT-2 Conv1D layers store [in, out]: " + firstFew(conv1d) : "they store [out, in]", fifo);
            c.setFanInFanOut(fifo);
        }
        for (String key : targets) {
            Module m = model.get(key);
            int r = c.rankFor(key);
            int alpha = c.alphaFor(key);
            Rng initRng = rngFor(c.seed(), key, adapterName, 1);
            Rng dropRng = rngFor(c.seed(), key, adapterName, 2);
            if (m instanceof LoraLinear ll) {
                ll.addAdapter(adapterName, r, alpha, c.loraDropout(), c.useRslora(), c.useDora(), c.initLoraWeights(),
                        initRng, dropRng, forLoading);
            } else if (m instanceof LoraEmbedding le) {
                le.addAdapter(adapterName, r, alpha, c.useRslora(), c.initLoraWeights(), initRng, forLoading);
            } else if (m instanceof LinearLayer) {
                LoraLinear ll = new LoraLinear(m);
                ll.addAdapter(adapterName, r, alpha, c.loraDropout(), c.useRslora(), c.useDora(), c.initLoraWeights(),
                        initRng, dropRng, forLoading);
                model.replace(key, ll);
            } else {
                LoraEmbedding le = new LoraEmbedding((Embedding) m);
                le.addAdapter(adapterName, r, alpha, c.useRslora(), c.initLoraWeights(), initRng, forLoading);
                model.replace(key, le);
            }
        }
        return targets;
    }

    @Override
    public String normalizeKey(String storedKey) {
        return LoraKeys.normalizeKey(storedKey);
    }

    @Override
    public boolean acceptsReshaped(String key) {
        return LoraKeys.acceptsReshaped(key);
    }

    @Override
    public Map<String, Parameter> extraParameters(Module model, PeftConfig config, String adapterName) {
        return LoraKeys.biases(model, (LoraConfig) config, adapterName);
    }

    /** See {@link LoraCombination#combine}. */
    @Override
    public PeftConfig addWeightedAdapter(Module model, Map<String, PeftConfig> configs, List<String> adapters,
                                         List<Double> weights, String newName, String combinationType, Integer svdRank) {
        return LoraCombination.combine(model, configs, adapters, weights, newName, combinationType, svdRank);
    }

    static List<String> firstFew(java.util.Collection<String> c) {
        List<String> out = new ArrayList<>();
        for (String s : c) {
            if (out.size() == 5) {
                out.add("...");
                break;
            }
            out.add(s);
        }
        return out;
    }
}
