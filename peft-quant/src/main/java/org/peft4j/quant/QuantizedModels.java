package org.peft4j.quant;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.CheckpointException;
import org.peft4j.core.io.CheckpointWeights;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.io.TensorInfo;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.bert.BertForTokenClassification;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.model.decoder.ConfigFields;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.model.gpt2.Gpt2Config;
import org.peft4j.core.model.gpt2.Gpt2LMHeadModel;
import org.peft4j.core.model.llama.LlamaForCausalLM;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.Rng;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.regex.Pattern;

/**
 * Loading and saving quantized models as Hugging Face folders.
 *
 * <p>A quantized folder is an ordinary checkpoint folder whose {@code config.json} carries a
 * {@code quantization_config} ({@link QuantConfig#toJson()}) and whose weights hold, for each
 * quantized linear layer, bitsandbytes' state-dict layout ({@link Quantized4bit},
 * {@link QuantizedInt8}): e.g. {@code model.layers.0.self_attn.q_proj.weight} (U8 packed codes),
 * {@code ….weight.absmax}, {@code ….weight.quant_map}, {@code ….weight.nested_absmax},
 * {@code ….weight.nested_quant_map}, {@code ….weight.quant_state.bitsandbytes__nf4}; all other
 * parameters are F32 under their usual names. Which layers are quantized is read per layer from
 * the tensors present, so a folder quantized by transformers + bitsandbytes (F32 compute) loads too.
 *
 * <p>{@link #load(Path, QuantConfig)} quantizes an fp32 folder while loading it. For the LLaMA
 * family (llama, mistral, qwen2) it streams: layers are built and quantized one at a time straight
 * from the checkpoint, so the full fp32 model is never in memory. GPT-2 and BERT folders are loaded
 * in fp32 and then quantized (they are small).
 */
public final class QuantizedModels {
    private static final Logger LOG = LoggerFactory.getLogger(QuantizedModels.class);

    /** The config key of the quantization settings, as transformers writes it. */
    public static final String QUANTIZATION_CONFIG = "quantization_config";
    private static final Pattern GPT2_BUFFERS = Pattern.compile("(transformer\\.)?h\\.\\d+\\.attn\\.(masked_)?bias");

    private QuantizedModels() {
    }

    /** True if {@code dir/config.json} has a {@code quantization_config}. */
    public static boolean isQuantizedFolder(Path dir) {
        try {
            return HfFolder.readConfig(dir).has(QUANTIZATION_CONFIG);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The {@code quantization_config} of a quantized folder. */
    public static QuantConfig quantConfigOf(Path dir) throws IOException {
        JsonNode cfg = HfFolder.readConfig(dir);
        JsonNode q = cfg.get(QUANTIZATION_CONFIG);
        if (q == null) {
            throw new IllegalArgumentException(dir.resolve(HfFolder.CONFIG_FILE) + " has no " + QUANTIZATION_CONFIG
                    + " (not a quantized folder)");
        }
        return QuantConfig.fromJson(q, dir.resolve(HfFolder.CONFIG_FILE).toString());
    }

    /**
     * Loads a quantized folder (written by {@link #save} or {@code peft4j quantize}), in eval mode.
     * The model family comes from {@code model_type}: a {@link LlamaForCausalLM} (llama, mistral,
     * qwen2), {@link Gpt2LMHeadModel} (gpt2) or a BERT model (bert; the class from {@code architectures}).
     *
     * @throws IllegalArgumentException naming the folder/key when the folder is not quantized, a
     *         quantized layer's pieces are missing or inconsistent, or tensors are missing/unexpected
     */
    public static Module load(Path dir) throws IOException {
        if (!isQuantizedFolder(dir)) {
            throw new IllegalArgumentException(dir.resolve(HfFolder.CONFIG_FILE) + " has no " + QUANTIZATION_CONFIG
                    + ": not a quantized folder (use load(dir, QuantConfig) to quantize while loading)");
        }
        return loadAny(dir, null);
    }

    /**
     * Loads {@code dir} quantizing the layers {@code config} selects while loading (an already
     * quantized folder loads as it is, its own formats win).
     */
    public static Module load(Path dir, QuantConfig config) throws IOException {
        if (config == null) {
            throw new IllegalArgumentException("config must not be null");
        }
        return loadAny(dir, config);
    }

    private static Module loadAny(Path dir, QuantConfig config) throws IOException {
        ObjectNode raw = (ObjectNode) HfFolder.readConfig(dir);
        String type = raw.path("model_type").asText("");
        switch (type) {
            case "llama", "mistral", "qwen2":
                return loadLlama(dir, config);
            case "gpt2": {
                Gpt2Config c = Gpt2Config.fromFields(ConfigFields.of(raw, dir.resolve(HfFolder.CONFIG_FILE).toString()));
                if (config != null && !raw.has(QUANTIZATION_CONFIG)) {
                    return Quantizer.quantize(Gpt2LMHeadModel.load(dir), config);
                }
                Module skeleton = Gpt2LMHeadModel.random(c, 0L);
                Predicate<String> ignorable = k -> GPT2_BUFFERS.matcher(k).matches()
                        || (c.tieWordEmbeddings() && k.equals("lm_head.weight"));
                fillSkeleton(dir, skeleton, "transformer.", ignorable, config);
                skeleton.eval();
                return skeleton;
            }
            case "bert": {
                BertConfig c = BertConfig.fromJson(raw, dir.resolve(HfFolder.CONFIG_FILE).toString());
                String arch = raw.path("architectures").path(0).asText("BertModel");
                if (config != null && !raw.has(QUANTIZATION_CONFIG)) {
                    Module m = switch (arch) {
                        case "BertForSequenceClassification" -> BertForSequenceClassification.load(dir);
                        case "BertForTokenClassification" -> BertForTokenClassification.load(dir);
                        default -> BertModel.load(dir);
                    };
                    return Quantizer.quantize(m, config);
                }
                Module skeleton;
                String prefix;
                try (CheckpointWeights w = CheckpointWeights.open(dir)) {
                    boolean pooler = w.contains("pooler.dense.weight") || w.contains("bert.pooler.dense.weight");
                    BertConfig cc = c;
                    switch (arch) {
                        case "BertForSequenceClassification" -> {
                            if (!pooler && cc.classifierPooling() == BertConfig.Pooling.POOLER) {
                                cc = cc.toBuilder().classifierPooling(BertConfig.Pooling.MEAN).build();
                            }
                            skeleton = new BertForSequenceClassification(cc, new Rng(0));
                            prefix = null;
                        }
                        case "BertForTokenClassification" -> {
                            skeleton = new BertForTokenClassification(cc, new Rng(0));
                            prefix = null;
                        }
                        default -> {
                            skeleton = new BertModel(cc, pooler, new Rng(0));
                            prefix = "bert.";
                        }
                    }
                }
                Predicate<String> ignorable = k -> k.endsWith("embeddings.position_ids");
                fillSkeleton(dir, skeleton, prefix, ignorable, config);
                skeleton.eval();
                return skeleton;
            }
            default:
                throw new IllegalArgumentException(dir.resolve(HfFolder.CONFIG_FILE) + ": model_type '" + type
                        + "' is not supported for quantized loading (llama, mistral, qwen2, gpt2, bert)");
        }
    }

    /**
     * Loads a LLaMA-family folder layer by layer: every decoder layer's linear layers are quantized
     * (fp32 checkpoint, per {@code config}) or read quantized (quantized checkpoint) right after the
     * layer is built, so only one layer's fp32 weights are ever in memory. {@code config} may be
     * null for a quantized folder. The output head and embeddings stay fp32.
     */
    public static LlamaForCausalLM loadLlama(Path dir, QuantConfig config) throws IOException {
        boolean quantizedFolder = isQuantizedFolder(dir);
        if (config == null && !quantizedFolder) {
            throw new IllegalArgumentException(dir + " is not a quantized folder; give a QuantConfig to quantize while loading");
        }
        long[] count = new long[3];
        LlamaForCausalLM m = LlamaForCausalLM.load(dir, 0L, (prefix, layer, source) -> {
            Set<String> used = replaceLinears(prefix, layer, source::keyFor, source.weights(), config, dir.toString(), count);
            return used;
        });
        LOG.info("loaded {} with {} quantized linear layers ({} parameters in {} bytes)", dir, count[0], count[1], count[2]);
        return m;
    }

    /**
     * Replaces every {@link Linear} under {@code root} (paths {@code prefix + relative path}) by a
     * {@link QuantizedLinear}: read from the checkpoint when it holds that layer quantized, or
     * quantized from its fp32 weight when {@code config} selects it. The bias parameter is kept (it
     * is filled later under its usual name). Returns the checkpoint keys consumed.
     */
    static Set<String> replaceLinears(String prefix, Module root, Function<String, String> resolve, CheckpointWeights w,
                                      QuantConfig config, String where, long[] count) {
        Set<String> consumed = new LinkedHashSet<>();
        List<String> paths = new ArrayList<>();
        for (Map.Entry<String, Module> e : root.namedModules().entrySet()) {
            if (e.getValue() instanceof Linear) {
                paths.add(e.getKey());
            }
        }
        for (String rel : paths) {
            String full = prefix + rel;
            if (full.endsWith(".")) {
                full = full.substring(0, full.length() - 1);
            }
            Linear lin = (Linear) (rel.isEmpty() ? root : root.get(rel));
            QuantizedTensor qt = readQuantized(full, resolve, w, consumed, where);
            if (qt == null && config != null && config.selects(full)) {
                String key = resolve.apply(full + ".weight");
                if (key == null) {
                    continue; // reported as missing by the caller's fill
                }
                TensorInfo info = w.info(key);
                long[] expected = lin.isFanInFanOut() ? new long[]{lin.inFeatures(), lin.outFeatures()}
                        : new long[]{lin.outFeatures(), lin.inFeatures()};
                if (!Arrays.equals(info.shape(), expected)) {
                    throw new CheckpointException(where + ": tensor '" + key + "' has shape " + Arrays.toString(info.shape())
                            + ", expected " + Arrays.toString(expected));
                }
                INDArray v = w.get(key);
                INDArray outIn = lin.isFanInFanOut() ? v.transpose() : v;
                qt = QuantizedLinear.quantizeWeight(outIn, config);
                release(v);
                consumed.add(key);
            }
            if (qt == null) {
                continue;
            }
            long[] s = qt.shape();
            if (s.length != 2 || s[0] != lin.outFeatures() || s[1] != lin.inFeatures()) {
                throw new CheckpointException(where + ": quantized weight of '" + full + "' has shape " + Arrays.toString(s)
                        + " but the model's layer is [" + lin.outFeatures() + ", " + lin.inFeatures() + "]");
            }
            QuantizedLinear q = new QuantizedLinear(qt, lin.bias());
            if (rel.isEmpty()) {
                throw new IllegalArgumentException("cannot replace the root module itself");
            }
            root.replace(rel, q);
            release(lin.weight().value());
            count[0]++;
            count[1] += qt.numel();
            count[2] += qt.storageBytes();
        }
        return consumed;
    }

    /** Frees an array's off-heap memory now (placeholders and read-once tensors), when ND4J allows it. */
    private static void release(INDArray a) {
        if (a != null && a.closeable()) {
            a.close();
        }
    }

    /** The quantized weight of layer {@code full} if the checkpoint holds it quantized, else null. */
    private static QuantizedTensor readQuantized(String full, Function<String, String> resolve, CheckpointWeights w,
                                                Set<String> consumed, String where) {
        String weightKey = resolve.apply(full + ".weight");
        String scbKey = resolve.apply(full + ".SCB");
        String stateNf4 = resolve.apply(full + ".weight." + Quantized4bit.QUANT_STATE_PREFIX + "nf4");
        String stateFp4 = resolve.apply(full + ".weight." + Quantized4bit.QUANT_STATE_PREFIX + "fp4");
        String what = where + " layer '" + full + "'";
        if (stateNf4 != null || stateFp4 != null) {
            if (weightKey == null) {
                throw new IllegalArgumentException(what + ": quant_state present but the packed weight is missing");
            }
            String base = weightKey; // resolved name of <full>.weight
            Map<String, INDArray> parts = new LinkedHashMap<>();
            for (String k : w.keys()) {
                if (k.equals(base) || k.startsWith(base + ".")) {
                    parts.put(k.substring(base.length()), w.get(k, false));
                    consumed.add(k);
                }
            }
            return Quantized4bit.fromStateDict(parts, what);
        }
        if (scbKey != null) {
            if (weightKey == null) {
                throw new IllegalArgumentException(what + ": SCB present but the int8 weight is missing");
            }
            Map<String, INDArray> parts = new LinkedHashMap<>();
            parts.put("weight", w.get(weightKey, false));
            parts.put("SCB", w.get(scbKey));
            consumed.add(weightKey);
            consumed.add(scbKey);
            for (String suffix : List.of("weight_format", "weight.outlier_cols", "weight.outlier_values")) {
                String k = resolve.apply(full + "." + suffix);
                if (k != null) {
                    parts.put(suffix, w.get(k, false));
                    consumed.add(k);
                }
            }
            return QuantizedInt8.fromStateDict(parts, what);
        }
        if (weightKey != null) {
            TensorInfo info = w.info(weightKey);
            String dt = info.dtypeName();
            if (dt.equals("U8") || dt.equals("I8")) {
                throw new IllegalArgumentException(what + ": weight '" + weightKey + "' is " + dt
                        + " (quantized) but its quantization statistics (quant_state / SCB) are missing");
            }
        }
        return null;
    }

    /**
     * Fills a freshly built model from a checkpoint: quantized layers first, then every other
     * parameter by name (strict: missing, unexpected keys and shape mismatches are errors).
     */
    private static void fillSkeleton(Path dir, Module skeleton, String basePrefix, Predicate<String> ignorable,
                                     QuantConfig config) throws IOException {
        try (CheckpointWeights w = CheckpointWeights.open(dir)) {
            Function<String, String> resolve = name -> {
                if (w.contains(name)) {
                    return name;
                }
                if (basePrefix != null) {
                    if (name.startsWith(basePrefix) && w.contains(name.substring(basePrefix.length()))) {
                        return name.substring(basePrefix.length());
                    }
                    if (!name.startsWith(basePrefix) && w.contains(basePrefix + name)) {
                        return basePrefix + name;
                    }
                }
                return null;
            };
            long[] count = new long[3];
            Set<String> used = replaceLinears("", skeleton, resolve, w, config, dir.toString(), count);
            List<String> missing = new ArrayList<>();
            List<String> bad = new ArrayList<>();
            for (Map.Entry<String, Parameter> e : skeleton.namedParameters().entrySet()) {
                String key = resolve.apply(e.getKey());
                if (key == null) {
                    missing.add(e.getKey());
                    continue;
                }
                used.add(key);
                long[] found = w.info(key).shape();
                if (!Arrays.equals(found, e.getValue().shape())) {
                    bad.add("'" + key + "' expected " + Arrays.toString(e.getValue().shape()) + " found " + Arrays.toString(found));
                    continue;
                }
                INDArray v = w.get(key);
                e.getValue().setValue(v.dataType() == DataType.FLOAT ? v : v.castTo(DataType.FLOAT));
            }
            List<String> unexpected = new ArrayList<>();
            for (String k : w.keys()) {
                if (!used.contains(k) && !ignorable.test(k)) {
                    unexpected.add(k);
                }
            }
            if (!missing.isEmpty() || !bad.isEmpty() || !unexpected.isEmpty()) {
                throw new CheckpointException("checkpoint " + dir + " does not match the model: "
                        + (missing.isEmpty() ? "" : "missing keys " + missing + "; ")
                        + (unexpected.isEmpty() ? "" : "unexpected keys " + unexpected + "; ")
                        + (bad.isEmpty() ? "" : "shape mismatches " + bad));
            }
            LOG.info("loaded {} with {} quantized linear layers", dir, count[0]);
        }
    }

    // ---- saving -------------------------------------------------------------------------------

    /**
     * The tensors of a (partly) quantized model in the saved layout: fp32 parameters under their
     * names, each {@link QuantizedLinear} as bitsandbytes' state dict under its path.
     */
    public static Map<String, INDArray> stateDict(Module model) {
        Map<String, INDArray> out = new LinkedHashMap<>(model.stateDict());
        for (Map.Entry<String, Module> e : model.namedModules().entrySet()) {
            if (e.getValue() instanceof QuantizedLinear q) {
                out.putAll(q.quantizedWeight().toStateDict(e.getKey()));
            }
        }
        return out;
    }

    /**
     * Writes a quantized model as a folder that {@link #load(Path)} reads back: {@code config.json}
     * (the model's config plus {@code quantization_config}) and the weights (sharded above 5 GB).
     * The folder is staged next to {@code dir} and swapped in whole. Supported: decoder LMs and the
     * BERT models; others need {@link #save(Module, ObjectNode, Path, long)}.
     */
    public static void save(Module model, Path dir) throws IOException {
        ObjectNode config;
        if (model instanceof PeftModel) {
            throw new IllegalArgumentException("save the base model (merge or unload the adapter first); "
                    + "the adapter itself is saved with PeftModel.save");
        } else if (model instanceof DecoderLM d) {
            config = d.configJson();
        } else if (model instanceof BertForSequenceClassification b) {
            config = JsonFiles.mapper().valueToTree(b.config().toMap("BertForSequenceClassification"));
        } else if (model instanceof BertForTokenClassification b) {
            config = JsonFiles.mapper().valueToTree(b.config().toMap("BertForTokenClassification"));
        } else if (model instanceof BertModel b) {
            config = JsonFiles.mapper().valueToTree(b.config().toMap("BertModel"));
        } else {
            throw new IllegalArgumentException("no config.json writer for " + model.getClass().getName()
                    + "; use save(model, configJson, dir, maxShardBytes)");
        }
        save(model, config, dir, HfFolder.DEFAULT_MAX_SHARD_BYTES);
    }

    /** As {@link #save(Module, Path)} with an explicit {@code config.json} body and shard size. */
    public static void save(Module model, ObjectNode config, Path dir, long maxShardBytes) throws IOException {
        QuantizedTensor first = null;
        List<String> fp32Linears = new ArrayList<>();
        for (Map.Entry<String, Module> e : model.namedModules().entrySet()) {
            if (e.getValue() instanceof QuantizedLinear q && first == null) {
                first = q.quantizedWeight();
            } else if (e.getValue() instanceof Linear && !e.getKey().isEmpty()) {
                fp32Linears.add(e.getKey());
            }
        }
        if (first == null) {
            throw new IllegalArgumentException(model.getClass().getSimpleName() + " has no quantized layer to save");
        }
        QuantConfig format = QLora.formatOf(first).toBuilder().skipModules(skipNames(fp32Linears)).build();
        ObjectNode cfg = config.deepCopy();
        cfg.set(QUANTIZATION_CONFIG, format.toJson());
        Map<String, INDArray> tensors = new TreeMap<>(stateDict(model));
        AtomicFiles.replaceDirectory(dir.toAbsolutePath().normalize(), staging -> {
            HfFolder.writeWeights(staging, tensors, maxShardBytes);
            HfFolder.writeConfig(staging, cfg);
        });
        LOG.info("saved quantized {} to {} ({} tensors)", model.getClass().getSimpleName(), dir, tensors.size());
    }

    /** The fp32 linear layers as {@code llm_int8_skip_modules} entries (their full paths). */
    private static List<String> skipNames(List<String> fp32Linears) {
        return new ArrayList<>(fp32Linears);
    }

    /** Copies the non-weight files of a checkpoint folder (tokenizer, generation config, …) into {@code out}. */
    static void copySideFiles(Path from, Path out) throws IOException {
        try (var files = Files.list(from)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                String name = p.getFileName().toString();
                if (!Files.isRegularFile(p) || name.equals(HfFolder.CONFIG_FILE) || name.endsWith(".safetensors")
                        || name.equals(HfFolder.WEIGHTS_INDEX_FILE) || name.endsWith(".bin") || name.startsWith(".")) {
                    continue;
                }
                Path target = out.resolve(name);
                if (!Files.exists(target)) {
                    AtomicFiles.writeBytes(target, Files.readAllBytes(p));
                }
            }
        }
    }
}
