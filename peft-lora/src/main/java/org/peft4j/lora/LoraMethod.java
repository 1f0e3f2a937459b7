package org.peft4j.lora;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.ModulesToSaveWrapper;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftMethod;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.peft.TargetMatcher;
import org.peft4j.core.tensor.Rng;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The LoRA method ({@code peft_type = "LORA"}): wraps target {@link Linear} layers (and
 * {@link LoraBaseLinear} layers) in {@link LoraLinear} and target {@link Embedding}s in
 * {@link LoraEmbedding}; saves {@code base_model.model.<path>.lora_A.weight} {@code [r, in]},
 * {@code …lora_B.weight} {@code [out, r]}, {@code …lora_magnitude_vector} {@code [out]} (DoRA),
 * {@code …lora_embedding_A} {@code [r, vocab]}, {@code …lora_embedding_B} {@code [dim, r]}, and
 * the biases chosen by {@code bias} ({@code all}: every bias; {@code lora_only}: the biases of
 * the LoRA-wrapped layers, under {@code <path>.base_layer.bias}).
 */
public final class LoraMethod implements PeftMethod {
    private static final Logger LOG = LoggerFactory.getLogger(LoraMethod.class);

    private static final Pattern AB_WITH_NAME = Pattern.compile("(.*)\\.(lora_A|lora_B)\\.([^.]+)\\.weight");
    private static final Pattern MAG_WITH_NAME = Pattern.compile("(.*)\\.lora_magnitude_vector\\.([^.]+)(\\.weight)?");
    private static final Pattern EMB_WITH_NAME = Pattern.compile("(.*)\\.(lora_embedding_A|lora_embedding_B)\\.([^.]+)");

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

    private static String join(String path, String suffix) {
        return path.isEmpty() ? suffix : path + "." + suffix;
    }

    /** A generator derived from the adapter seed, the module path and the adapter name (order independent). */
    static Rng rngFor(long seed, String path, String adapter, int stream) {
        long h = seed * 0x9E3779B97F4A7C15L;
        for (byte b : (path + "\u0000" + adapter).getBytes(StandardCharsets.UTF_8)) {
            h = (h ^ (b & 0xff)) * 0x100000001B3L;
        }
        return new Rng(h ^ ((long) stream << 56));
    }

    // ---- injection ------------------------------------------------------------------------------

    @Override
    public List<String> inject(Module model, PeftConfig config, String adapterName, boolean forLoading) {
        LoraConfig c = (LoraConfig) config;
        List<String> targets = TargetMatcher.findTargets(model, c.targetSpec());
        // Check every target before changing anything, so a bad config leaves the model untouched.
        for (String key : targets) {
            Module m = model.get(key);
            boolean ok = m instanceof LoraLinear || m instanceof LoraEmbedding || m instanceof Linear
                    || m instanceof LoraBaseLinear || m instanceof Embedding;
            if (!ok) {
                throw new IllegalArgumentException("target module '" + key + "' is a " + m.getClass().getSimpleName()
                        + "; LoRA supports Linear (incl. GPT-2 Conv1D), Embedding and LoraBaseLinear layers "
                        + "(target_modules " + c.targetModules() + ")");
            }
            if (c.useDora() && (m instanceof Embedding)) {
                throw new IllegalArgumentException("use_dora is not supported for the embedding layer '" + key + "' in peft4j");
            }
            if (m instanceof LoraLayer l && l.adapterNames().contains(adapterName)) {
                throw new IllegalArgumentException("module '" + key + "' already has LoRA adapter '" + adapterName + "'");
            }
        }
        List<String> conv1d = new ArrayList<>();
        for (String key : targets) {
            if (model.get(key) instanceof Linear l && l.isFanInFanOut()) {
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
            } else if (m instanceof Linear || m instanceof LoraBaseLinear) {
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

    // ---- parameters and state dicts ---------------------------------------------------------------

    /** Every bias parameter outside modules-to-save wrappers (PEFT's "bias" in name, by last segment). */
    private static Map<String, Parameter> allBiases(Module model) {
        List<String> wrappers = new ArrayList<>();
        for (Map.Entry<String, Module> e : model.namedModules().entrySet()) {
            if (e.getValue() instanceof ModulesToSaveWrapper) {
                wrappers.add(e.getKey());
            }
        }
        Map<String, Parameter> out = new LinkedHashMap<>();
        outer:
        for (Map.Entry<String, Parameter> e : model.namedParameters().entrySet()) {
            String k = e.getKey();
            if (!(k.equals("bias") || k.endsWith(".bias"))) {
                continue;
            }
            for (String w : wrappers) {
                if (w.isEmpty() || k.startsWith(w + ".")) {
                    continue outer;
                }
            }
            out.put(k, e.getValue());
        }
        return out;
    }

    private static Parameter baseBias(LoraLayer layer) {
        Module base = layer.baseLayer();
        if (base instanceof Linear l) {
            return l.bias();
        }
        if (base instanceof LoraBaseLinear l) {
            return l.bias();
        }
        return null;
    }

    /** Saved key → parameter, for one adapter (the key set PEFT writes). */
    private static Map<String, Parameter> savedParameters(Module model, LoraConfig c, String adapterName) {
        Map<String, Parameter> out = new LinkedHashMap<>();
        Map<String, LoraLayer> layers = loraLayers(model);
        for (Map.Entry<String, LoraLayer> e : layers.entrySet()) {
            if (e.getValue().adapterNames().contains(adapterName)) {
                e.getValue().savedTensors(adapterName).forEach((suffix, p) ->
                        out.put(PeftModel.MODEL_PREFIX + join(e.getKey(), suffix), p));
            }
        }
        if (c.bias().equals("all")) {
            allBiases(model).forEach((k, p) -> out.put(PeftModel.MODEL_PREFIX + k, p));
        } else if (c.bias().equals("lora_only")) {
            for (Map.Entry<String, LoraLayer> e : layers.entrySet()) {
                Parameter b = baseBias(e.getValue());
                if (b != null && e.getValue().adapterNames().contains(adapterName)) {
                    out.put(PeftModel.MODEL_PREFIX + join(e.getKey(), LoraLinear.BASE + ".bias"), b);
                }
            }
        }
        return out;
    }

    @Override
    public Map<String, INDArray> adapterStateDict(Module model, PeftConfig config, String adapterName) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        savedParameters(model, (LoraConfig) config, adapterName).forEach((k, p) -> out.put(k, p.value()));
        return out;
    }

    @Override
    public Map<String, Parameter> adapterParameters(Module model, PeftConfig config, String adapterName) {
        LoraConfig c = (LoraConfig) config;
        Map<String, Parameter> out = new LinkedHashMap<>();
        Map<String, LoraLayer> layers = loraLayers(model);
        for (Map.Entry<String, LoraLayer> e : layers.entrySet()) {
            e.getValue().adapterParameters(adapterName).forEach((k, p) -> out.put(join(e.getKey(), k), p));
        }
        if (c.bias().equals("all")) {
            out.putAll(allBiases(model));
        } else if (c.bias().equals("lora_only")) {
            for (Map.Entry<String, LoraLayer> e : layers.entrySet()) {
                Parameter b = baseBias(e.getValue());
                if (b != null && e.getValue().adapterNames().contains(adapterName)) {
                    out.put(join(e.getKey(), LoraLinear.BASE + ".bias"), b);
                }
            }
        }
        return out;
    }

    /** A saved key with any adapter name inside (PEFT's in-memory form, older files) reduced to the saved form. */
    static String normalizeKey(String key) {
        Matcher m = AB_WITH_NAME.matcher(key);
        if (m.matches()) {
            return m.group(1) + "." + m.group(2) + ".weight";
        }
        if (key.endsWith(".lora_magnitude_vector.weight")) {
            return key.substring(0, key.length() - ".weight".length());
        }
        m = MAG_WITH_NAME.matcher(key);
        if (m.matches()) {
            return m.group(1) + ".lora_magnitude_vector";
        }
        m = EMB_WITH_NAME.matcher(key);
        if (m.matches()) {
            return m.group(1) + "." + m.group(2);
        }
        return key;
    }

    @Override
    public void loadAdapterStateDict(Module model, PeftConfig config, String adapterName, Map<String, INDArray> tensors,
                                     String source) {
        LoraConfig c = (LoraConfig) config;
        Map<String, Parameter> expected = savedParameters(model, c, adapterName);
        // bias=lora_only as PEFT names it (<path>.bias) is accepted too
        Map<String, String> aliases = new LinkedHashMap<>();
        for (String k : expected.keySet()) {
            if (k.endsWith("." + LoraLinear.BASE + ".bias")) {
                aliases.put(k.substring(0, k.length() - (LoraLinear.BASE + ".bias").length()) + "bias", k);
            }
        }
        Map<String, INDArray> found = new LinkedHashMap<>();
        List<String> unexpected = new ArrayList<>();
        for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
            String k = normalizeKey(e.getKey());
            if (!expected.containsKey(k) && aliases.containsKey(k)) {
                k = aliases.get(k);
            }
            if (!expected.containsKey(k)) {
                unexpected.add(e.getKey());
                continue;
            }
            if (found.containsKey(k)) {
                throw new IllegalArgumentException(source + ": two tensors map to '" + k + "' (one is '" + e.getKey() + "')");
            }
            INDArray v = e.getValue();
            Parameter p = expected.get(k);
            if (!Arrays.equals(v.shape(), p.shape())) {
                boolean vectorLike = k.endsWith(".lora_magnitude_vector") && v.length() == p.length();
                if (!vectorLike) {
                    throw new IllegalArgumentException(source + ": tensor '" + e.getKey() + "' has shape "
                            + Arrays.toString(v.shape()) + ", expected " + Arrays.toString(p.shape())
                            + " (the adapter was trained for a base model of different size or rank)");
                }
                v = v.reshape(p.shape());
            }
            found.put(k, v);
        }
        if (!unexpected.isEmpty()) {
            Set<String> paths = new LinkedHashSet<>();
            for (String u : unexpected) {
                paths.add(u);
                if (paths.size() == 5) {
                    break;
                }
            }
            throw new IllegalArgumentException(source + ": " + unexpected.size() + " tensor(s) fit no LoRA layer of adapter '"
                    + adapterName + "' in " + model.getClass().getSimpleName() + ", e.g. " + paths
                    + "; the adapter targets modules that do not exist in this base model (its LoRA layers are "
                    + firstFew(loraLayers(model).keySet()) + ")");
        }
        List<String> missing = new ArrayList<>();
        for (String k : expected.keySet()) {
            if (!found.containsKey(k)) {
                missing.add(k);
            }
        }
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException(source + " lacks " + missing.size() + " tensor(s) of adapter '" + adapterName
                    + "', e.g. " + firstFew(missing));
        }
        found.forEach((k, v) -> expected.get(k).setValue(v.dup('c')));
    }

    private static List<String> firstFew(java.util.Collection<String> c) {
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

    // ---- switching, deleting, merging -----------------------------------------------------------

    @Override
    public void setActiveAdapter(Module model, String adapterName) {
        for (LoraLayer l : loraLayers(model).values()) {
            l.setActiveAdapters(List.of(adapterName));
        }
    }

    @Override
    public void deleteAdapter(Module model, String adapterName) {
        for (LoraLayer l : loraLayers(model).values()) {
            l.deleteAdapter(adapterName);
        }
    }

    @Override
    public void setAdaptersEnabled(Module model, boolean enabled) {
        for (LoraLayer l : loraLayers(model).values()) {
            l.setAdaptersEnabled(enabled);
        }
    }

    @Override
    public void merge(Module model, List<String> adapterNames) {
        for (LoraLayer l : loraLayers(model).values()) {
            l.merge(adapterNames);
        }
    }

    @Override
    public void unmerge(Module model) {
        for (LoraLayer l : loraLayers(model).values()) {
            l.unmerge();
        }
    }

    @Override
    public boolean isMerged(Module model) {
        for (LoraLayer l : loraLayers(model).values()) {
            if (l.isMerged()) {
                return true;
            }
        }
        return false;
    }

    @Override
    public Module unload(Module model, boolean merge, List<String> adapterNames) {
        if (merge) {
            merge(model, adapterNames);
        }
        Module root = model;
        for (Map.Entry<String, LoraLayer> e : loraLayers(model).entrySet()) {
            Module base = e.getValue().unwrap();
            if (e.getKey().isEmpty()) {
                root = base;
            } else {
                model.replace(e.getKey(), base);
            }
        }
        return root;
    }

    // ---- weighted combinations ------------------------------------------------------------------

    /**
     * PEFT's {@code add_weighted_adapter} for LoRA, with scaling {@code s_i} of each source:
     * <ul>
     *   <li>{@code linear} (equal ranks): {@code A = Σ sign(w_i s_i)·√|w_i s_i|·A_i},
     *       {@code B = Σ √|w_i s_i|·B_i} (PEFT's formula; the product has cross terms unless one source);</li>
     *   <li>{@code cat}: {@code A = [w_1 s_1 A_1; w_2 s_2 A_2; …]}, {@code B = [B_1, B_2, …]}, so
     *       {@code B·A = Σ w_i·s_i·B_i·A_i} exactly, rank = Σ r_i;</li>
     *   <li>{@code svd}: truncated SVD of {@code Σ w_i·ΔW_i} ({@code ΔW_i = s_i·B_i·A_i}) to the new rank
     *       (default the largest source rank): {@code B = U_r·diag(S_r)}, {@code A = Vᵀ_r}. (PEFT's
     *       code multiplies each already-scaled ΔW_i by s_i once more; the two agree when alpha = r.)</li>
     * </ul>
     * The new adapter has alpha = r (scaling 1) and targets exactly the modules where a source lives.
     */
    @Override
    public PeftConfig addWeightedAdapter(Module model, Map<String, PeftConfig> configs, List<String> adapters,
                                         List<Double> weights, String newName, String combinationType, Integer svdRank) {
        String type = combinationType == null ? "svd" : combinationType.toLowerCase(Locale.ROOT);
        if (adapters.size() == 1) {
            type = "linear";
        }
        if (!List.of("linear", "cat", "svd").contains(type)) {
            throw new IllegalArgumentException("combination_type must be 'linear', 'cat' or 'svd', got '" + combinationType + "'");
        }
        List<Integer> ranks = new ArrayList<>();
        for (String a : adapters) {
            LoraConfig c = (LoraConfig) configs.get(a);
            if (c.useDora()) {
                throw new IllegalArgumentException("adapter '" + a + "' uses DoRA; weighted combination supports plain LoRA only");
            }
            int r = c.r();
            for (int v : c.rankPattern().values()) {
                r = Math.max(r, v);
            }
            ranks.add(r);
        }
        int newRank;
        switch (type) {
            case "linear" -> {
                if (new LinkedHashSet<>(ranks).size() != 1) {
                    throw new IllegalArgumentException("combination 'linear' needs adapters of equal rank, got " + ranks
                            + " for " + adapters);
                }
                newRank = ranks.get(0);
            }
            case "cat" -> newRank = ranks.stream().mapToInt(Integer::intValue).sum();
            default -> newRank = svdRank != null ? svdRank : ranks.stream().mapToInt(Integer::intValue).max().orElseThrow();
        }
        if (newRank <= 0) {
            throw new IllegalArgumentException("the combined adapter's rank must be positive, got " + newRank);
        }
        LoraConfig first = (LoraConfig) configs.get(adapters.get(0));
        List<String> paths = new ArrayList<>();
        for (Map.Entry<String, LoraLayer> e : loraLayers(model).entrySet()) {
            LoraLayer layer = e.getValue();
            List<Integer> present = new ArrayList<>();
            for (int i = 0; i < adapters.size(); i++) {
                if (layer.adapterNames().contains(adapters.get(i))) {
                    present.add(i);
                }
            }
            if (present.isEmpty()) {
                continue;
            }
            INDArray[] ab = switch (type) {
                case "linear" -> linear(layer, adapters, weights, present, newRank, e.getKey());
                case "cat" -> cat(layer, adapters, weights, present, newRank);
                default -> svd(layer, adapters, weights, present, newRank);
            };
            layer.addAdapterFromFactors(newName, ab[0], ab[1], first.loraDropout());
            paths.add(e.getKey());
        }
        if (paths.isEmpty()) {
            throw new IllegalArgumentException("no LoRA layer holds any of the adapters " + adapters);
        }
        return first.combined(newRank, paths);
    }

    private static INDArray[] linear(LoraLayer layer, List<String> adapters, List<Double> weights, List<Integer> present,
                                     int newRank, String path) {
        INDArray a = null;
        INDArray b = null;
        for (int i : present) {
            String name = adapters.get(i);
            LoraLayer.Settings s = layer.settings(name);
            if (s.r() != newRank) {
                throw new IllegalArgumentException("combination 'linear' at '" + path + "': adapter '" + name + "' has rank "
                        + s.r() + ", expected " + newRank);
            }
            double ws = weights.get(i) * s.scaling();
            double root = Math.sqrt(Math.abs(ws));
            double sign = ws >= 0 ? 1.0 : -1.0;
            INDArray ai = layer.loraA(name).value().castTo(DataType.DOUBLE).mul(sign * root);
            INDArray bi = layer.loraB(name).value().castTo(DataType.DOUBLE).mul(root);
            a = a == null ? ai : a.addi(ai);
            b = b == null ? bi : b.addi(bi);
        }
        return new INDArray[]{a, b};
    }

    private static INDArray[] cat(LoraLayer layer, List<String> adapters, List<Double> weights, List<Integer> present,
                                  int newRank) {
        String any = adapters.get(present.get(0));
        long in = layer.loraA(any).size(1);
        long out = layer.loraB(any).size(0);
        INDArray a = Nd4j.zeros(DataType.DOUBLE, newRank, in);
        INDArray b = Nd4j.zeros(DataType.DOUBLE, out, newRank);
        long row = 0;
        for (int i : present) {
            String name = adapters.get(i);
            LoraLayer.Settings s = layer.settings(name);
            INDArray ai = layer.loraA(name).value().castTo(DataType.DOUBLE).mul(weights.get(i) * s.scaling());
            INDArray bi = layer.loraB(name).value().castTo(DataType.DOUBLE);
            long r = ai.size(0);
            a.get(NDArrayIndex.interval(row, row + r), NDArrayIndex.all()).assign(ai);
            b.get(NDArrayIndex.all(), NDArrayIndex.interval(row, row + r)).assign(bi);
            row += r;
        }
        return new INDArray[]{a, b};
    }

    private static INDArray[] svd(LoraLayer layer, List<String> adapters, List<Double> weights, List<Integer> present,
                                  int newRank) {
        INDArray delta = null;
        for (int i : present) {
            INDArray d = layer.deltaWeight(adapters.get(i)).castTo(DataType.DOUBLE).mul(weights.get(i));
            delta = delta == null ? d : delta.addi(d);
        }
        long out = delta.size(0);
        long in = delta.size(1);
        LinAlg.SVD svd = LinAlg.svd(delta);
        long k = Math.min(newRank, svd.s().length());
        INDArray a = Nd4j.zeros(DataType.DOUBLE, newRank, in);
        INDArray b = Nd4j.zeros(DataType.DOUBLE, out, newRank);
        INDArray s = svd.s().get(NDArrayIndex.interval(0, k));
        b.get(NDArrayIndex.all(), NDArrayIndex.interval(0, k))
                .assign(svd.u().get(NDArrayIndex.all(), NDArrayIndex.interval(0, k)).mulRowVector(s.reshape(1, k)));
        a.get(NDArrayIndex.interval(0, k), NDArrayIndex.all())
                .assign(svd.vt().get(NDArrayIndex.interval(0, k), NDArrayIndex.all()));
        return new INDArray[]{a, b};
    }
}
