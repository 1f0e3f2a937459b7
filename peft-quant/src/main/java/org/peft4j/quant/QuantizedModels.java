package org.peft4j.quant;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.CheckpointException;
import org.peft4j.core.io.CheckpointWeights;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.io.TensorInfo;
import org.peft4j.core.model.LayerLoader;
import org.peft4j.core.model.ModelFamilies;
import org.peft4j.core.model.ModelFamily;
import org.peft4j.core.model.llama.LlamaForCausalLM;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.peft.PeftModel;
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

/**
 * Loading and saving quantized models as Hugging Face folders, for every family of the
 * {@link ModelFamilies model registry}.
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
 * <p>{@link #load(Path, QuantConfig)} quantizes an fp32 folder while loading it. For a family
 * that {@linkplain ModelFamily#streamsLayers() streams} (LLaMA: llama, mistral, qwen2) layers are
 * built and quantized one at a time straight from the checkpoint ({@link LayerLoader}), so the
 * full fp32 model is never in memory. GPT-2 and BERT folders are loaded in fp32 and then quantized
 * (they are small).
 */
public final class QuantizedModels {
    private static final Logger LOG = LoggerFactory.getLogger(QuantizedModels.class);

    /** The config key of the quantization settings, as transformers writes it. */
    public static final String QUANTIZATION_CONFIG = "quantization_config";

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
     * The model family comes from {@code model_type} ({@link ModelFamilies}): a {@link LlamaForCausalLM}
     * (llama, mistral, qwen2), a {@code Gpt2LMHeadModel} (gpt2) or a BERT model (bert; the class from
     * {@code architectures}); an unknown type is an error naming the config file and the known types.
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

    /**
     * The folder's {@link ModelFamily} decides: a streaming family (LLaMA) hands every decoder layer
     * to the quantizing {@link LayerLoader} as it is built; any other loads an fp32 folder in fp32
     * and then quantizes it (small models), or builds its skeleton and lets the loader read the
     * quantized layers before every other parameter is filled strictly.
     */
    private static Module loadAny(Path dir, QuantConfig config) throws IOException {
        ObjectNode raw = (ObjectNode) HfFolder.readConfig(dir);
        ModelFamily<?> family = ModelFamilies.forConfig(raw, dir.resolve(HfFolder.CONFIG_FILE).toString());
        if (config != null && !raw.has(QUANTIZATION_CONFIG) && !family.streamsLayers()) {
            return Quantizer.quantize(family.load(dir, 0L), config);
        }
        long[] count = new long[3];
        Module m = family.load(dir, 0L, quantizingLoader(dir, config, count));
        LOG.info("loaded {} with {} quantized linear layers ({} parameters in {} bytes)", dir, count[0], count[1], count[2]);
        return m;
    }

    /**
     * The {@link LayerLoader} that reads a layer's quantized linear layers from the checkpoint, or
     * quantizes its fp32 ones {@code config} selects ({@link #replaceLinears}); {@code count}
     * accumulates layers, parameters and bytes.
     */
    private static LayerLoader quantizingLoader(Path dir, QuantConfig config, long[] count) {
        return (prefix, layer, source) -> replaceLinears(prefix, layer, source::keyFor, source.weights(), config,
                dir.toString(), count);
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
        LlamaForCausalLM m = LlamaForCausalLM.load(dir, 0L, quantizingLoader(dir, config, count));
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
     * The folder is staged next to {@code dir} and swapped in whole. Supported: the model classes of
     * the registered families ({@link ModelFamilies#configJson}: decoder LMs and the BERT models);
     * others need {@link #save(Module, ObjectNode, Path, long)}.
     */
    public static void save(Module model, Path dir) throws IOException {
        save(model, configOf(model), dir, HfFolder.DEFAULT_MAX_SHARD_BYTES, null);
    }

    /** The {@code config.json} body of a model class of a registered family ({@link ModelFamilies#configJson}). */
    static ObjectNode configOf(Module model) {
        if (model instanceof PeftModel) {
            throw new IllegalArgumentException("save the base model (merge or unload the adapter first); "
                    + "the adapter itself is saved with PeftModel.save");
        }
        return ModelFamilies.configJson(model).orElseThrow(() -> new IllegalArgumentException("no config.json writer for "
                + model.getClass().getName() + "; use save(model, configJson, dir, maxShardBytes)"));
    }

    /** As {@link #save(Module, Path)} with an explicit {@code config.json} body and shard size. */
    public static void save(Module model, ObjectNode config, Path dir, long maxShardBytes) throws IOException {
        save(model, config, dir, maxShardBytes, null);
    }

    /**
     * As {@link #save(Module, ObjectNode, Path, long)}; the non-weight files of {@code sideFilesFrom}
     * (tokenizer, generation config, …), when given, are copied into the same staged folder.
     */
    static void save(Module model, ObjectNode config, Path dir, long maxShardBytes, Path sideFilesFrom) throws IOException {
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
            if (sideFilesFrom != null) {
                copySideFiles(sideFilesFrom, staging);
            }
        });
        LOG.info("saved quantized {} to {} ({} tensors)", model.getClass().getSimpleName(), dir, tensors.size());
    }

    /** The fp32 linear layers as {@code llm_int8_skip_modules} entries (their full paths). */
    private static List<String> skipNames(List<String> fp32Linears) {
        return new ArrayList<>(fp32Linears);
    }

    /** Copies the non-weight files of a checkpoint folder (tokenizer, generation config, …) into {@code out} (a staging folder). */
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
                    Files.copy(p, target);
                }
            }
        }
    }
}
