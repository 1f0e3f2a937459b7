package org.peft4j.adapter;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.nn.ResidualHookSite;
import org.peft4j.core.peft.PeftException;
import org.peft4j.core.peft.PythonJson;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Bottleneck adapters on a model whose blocks offer {@link ResidualHookSite}s (BERT, GPT-2,
 * LLaMA/Mistral/Qwen2), in AdapterHub's layout: {@link #add} inserts a {@link BottleneckLayer} into
 * each slot the config asks for ({@code mh_adapter}: after attention, {@code output_adapter}:
 * after the feed-forward block; {@code leave_out} layers skipped) and one {@link BottleneckAdapter}
 * per place; {@link #trainAdapter} freezes everything else; {@link #save} / {@link #load} write and
 * read AdapterHub's folder: {@code adapter_config.json} ({@code config}, {@code hidden_size},
 * {@code model_class}, {@code model_name}, {@code model_type}, {@code name}, {@code version};
 * sorted keys, indent 2) and {@code adapter.safetensors} with the model's own state-dict keys
 * filtered on {@code .adapters.<name>.}.
 */
public final class BottleneckAdapters {
    public static final String CONFIG_NAME = "adapter_config.json";
    public static final String WEIGHTS_NAME = "adapter.safetensors";
    /** AdapterHub's default (pickle) weights file; peft4j reads only the safetensors form. */
    public static final String TORCH_WEIGHTS_NAME = "pytorch_adapter.bin";
    public static final String VERSION = "adapters.1.2.0";

    private BottleneckAdapters() {
    }

    /** Path → site, in tree order. */
    static Map<String, ResidualHookSite> sites(Module model) {
        Map<String, ResidualHookSite> out = new LinkedHashMap<>();
        for (Map.Entry<String, Module> e : model.namedModules().entrySet()) {
            if (e.getValue() instanceof ResidualHookSite s) {
                out.put(e.getKey(), s);
            }
        }
        return out;
    }

    /** Path → bottleneck layer, in tree order. */
    public static Map<String, BottleneckLayer> layers(Module model) {
        Map<String, BottleneckLayer> out = new LinkedHashMap<>();
        for (Map.Entry<String, Module> e : model.namedModules().entrySet()) {
            if (e.getValue() instanceof BottleneckLayer l) {
                out.put(e.getKey(), l);
            }
        }
        return out;
    }

    /**
     * Adds adapter {@code name} with {@code config} (initialised from {@code seed}, or from
     * {@code init_weights_seed} when set) and makes it the active one. Returns the paths of the
     * adapter modules.
     *
     * @throws IllegalArgumentException for a model without insertion points, a name already used,
     *                                  a reduction factor that leaves no bottleneck dimension, ...
     */
    public static List<String> add(Module model, String name, BnConfig config, long seed) {
        config.validate();
        if (name == null || name.isEmpty() || name.contains(".")) {
            throw new IllegalArgumentException("invalid adapter name '" + name + "' (non-empty, no dots)");
        }
        Map<String, ResidualHookSite> sites = sites(model);
        if (sites.isEmpty()) {
            throw new IllegalArgumentException("a " + model.getClass().getSimpleName() + " has no place for bottleneck adapters: "
                    + "peft4j inserts them into BERT, GPT-2 and LLaMA/Mistral/Qwen2 blocks");
        }
        for (BottleneckLayer l : layers(model).values()) {
            if (l.adapterNames().contains(name)) {
                throw new IllegalArgumentException("bottleneck adapter '" + name + "' already exists in the model");
            }
        }
        List<Integer> leaveOut = config.leaveOut();
        // build every adapter first (sizes are checked here), then insert: a bad config leaves the model untouched
        Map<String, BottleneckAdapter> built = new LinkedHashMap<>();
        Map<String, String[]> where = new LinkedHashMap<>();
        for (Map.Entry<String, ResidualHookSite> e : sites.entrySet()) {
            ResidualHookSite site = e.getValue();
            if (leaveOut.contains(site.layerIndex())) {
                continue;
            }
            for (Map.Entry<String, ResidualHookSite.SubLayer> slot : site.residualHookSlots().entrySet()) {
                boolean wanted = slot.getValue() == ResidualHookSite.SubLayer.ATTENTION ? config.mhAdapter() : config.outputAdapter();
                if (!wanted) {
                    continue;
                }
                String path = (e.getKey().isEmpty() ? "" : e.getKey() + ".") + slot.getKey();
                long s = config.initWeightsSeed() != null ? config.initWeightsSeed() : mix(seed, path + "\u0000" + name);
                built.put(path, new BottleneckAdapter(config, site.residualWidth(), site.layerIndex(), s));
                where.put(path, new String[]{e.getKey(), slot.getKey()});
            }
        }
        List<String> out = new ArrayList<>();
        for (Map.Entry<String, BottleneckAdapter> e : built.entrySet()) {
            String[] w = where.get(e.getKey());
            ResidualHookSite site = sites.get(w[0]);
            Module hook = site.residualHook(w[1]);
            if (!(hook instanceof BottleneckLayer)) {
                hook = new BottleneckLayer(!w[1].equals("adapters"));
                site.insertResidualHook(w[1], hook);
            }
            BottleneckLayer layer = (BottleneckLayer) hook;
            layer.add(name, e.getValue());
            String nestedPath = e.getKey() + (w[1].equals("adapters") ? "" : ".adapters") + "." + name;
            out.add(nestedPath);
        }
        setActive(model, name);
        return out;
    }

    private static long mix(long seed, String s) {
        long h = seed * 0x9E3779B97F4A7C15L;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            h = (h ^ (b & 0xff)) * 0x100000001B3L;
        }
        return h;
    }

    /** Runs adapter {@code name} everywhere (null: none, the plain model). */
    public static void setActive(Module model, String name) {
        Map<String, BottleneckLayer> layers = layers(model);
        if (name != null && layers.values().stream().noneMatch(l -> l.adapterNames().contains(name))) {
            throw new IllegalArgumentException("no bottleneck adapter '" + name + "' in the model (adapters: " + names(model) + ")");
        }
        layers.values().forEach(l -> l.setActive(name));
    }

    /** AdapterHub's {@code Stack(names...)}: the adapters one after another at every place. */
    public static void setActiveStack(Module model, List<String> names) {
        checkComposition(model, names, "Stack");
        layers(model).values().forEach(l -> l.setComposition(BottleneckLayer.Mode.STACK, names, null));
    }

    /**
     * AdapterHub's {@code Average(names..., weights=...)}: the adapters on the same input, their
     * outputs averaged with {@code weights} (normalised to sum 1; null: equal weights), computed as
     * the library does ({@code torch.mean(stack(outputs) * weights, 0)}).
     */
    public static void setActiveAverage(Module model, List<String> names, List<Double> weights) {
        checkComposition(model, names, "Average");
        double[] w = new double[names.size()];
        if (weights == null) {
            java.util.Arrays.fill(w, 1.0 / names.size());
        } else {
            if (weights.size() != names.size()) {
                throw new IllegalArgumentException("Average: " + weights.size() + " weights for " + names.size() + " adapters");
            }
            double sum = weights.stream().mapToDouble(Double::doubleValue).sum();
            for (int i = 0; i < w.length; i++) {
                w[i] = weights.get(i) / sum;
            }
        }
        layers(model).values().forEach(l -> l.setComposition(BottleneckLayer.Mode.AVERAGE, names, w));
    }

    private static void checkComposition(Module model, List<String> names, String block) {
        if (names == null || names.isEmpty()) {
            throw new IllegalArgumentException(block + " needs at least one adapter");
        }
        List<String> known = names(model);
        for (String n : names) {
            if (!known.contains(n)) {
                throw new IllegalArgumentException(block + ": no bottleneck adapter '" + n + "' in the model (adapters: " + known + ")");
            }
        }
    }

    /** Every adapter name in the model. */
    public static List<String> names(Module model) {
        java.util.LinkedHashSet<String> s = new java.util.LinkedHashSet<>();
        layers(model).values().forEach(l -> s.addAll(l.adapterNames()));
        return List.copyOf(s);
    }

    /** AdapterHub's filter of the model state dict: keys containing {@code .adapters.<name>.}. */
    public static Map<String, Parameter> parameters(Module model, String name) {
        Map<String, Parameter> out = new LinkedHashMap<>();
        String mark = ".adapters." + name + ".";
        for (Map.Entry<String, Parameter> e : model.namedParameters().entrySet()) {
            if (("." + e.getKey()).contains(mark)) {
                out.put(e.getKey(), e.getValue());
            }
        }
        return out;
    }

    /**
     * AdapterHub's {@code train_adapter}: freezes the whole model, unfreezes adapter {@code name}
     * and activates it. Returns its parameters (path → parameter).
     */
    public static Map<String, Parameter> trainAdapter(Module model, String name) {
        setActive(model, name);
        model.freeze();
        Map<String, Parameter> p = parameters(model, name);
        p.values().forEach(x -> x.setTrainable(true));
        return p;
    }

    /** Saves adapter {@code name} as AdapterHub does with {@code use_safetensors=True}. */
    public static void save(Module model, String name, Path dir, String modelName) {
        Map<String, Parameter> params = parameters(model, name);
        if (params.isEmpty()) {
            throw new IllegalArgumentException("no bottleneck adapter '" + name + "' in the model (adapters: " + names(model) + ")");
        }
        BottleneckAdapter any = null;
        for (BottleneckLayer l : layers(model).values()) {
            if (l.adapter(name) != null) {
                any = l.adapter(name);
                break;
            }
        }
        Map<String, Object> cfg = new TreeMap<>();
        cfg.put("config", any.config().toMap());
        cfg.put("hidden_size", sites(model).values().iterator().next().residualWidth());
        cfg.put("model_class", model.getClass().getSimpleName());
        cfg.put("model_name", modelName);
        cfg.put("model_type", modelType(model));
        cfg.put("name", name);
        cfg.put("version", VERSION);
        Map<String, INDArray> tensors = new TreeMap<>();
        params.forEach((k, v) -> tensors.put(k, v.value()));
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve(CONFIG_NAME), PythonJson.write(cfg), StandardCharsets.UTF_8);
            SafeTensors.write(dir.resolve(WEIGHTS_NAME), tensors);
        } catch (IOException e) {
            throw new PeftException("cannot save bottleneck adapter '" + name + "' to " + dir + ": " + e.getMessage(), e);
        }
    }

    static String modelType(Module model) {
        String site = sites(model).values().iterator().next().getClass().getName();
        if (site.contains(".bert.")) {
            return "bert";
        }
        if (site.contains(".gpt2.")) {
            return "gpt2";
        }
        return "llama";
    }

    /**
     * Loads an AdapterHub folder ({@code adapter_config.json} + {@code adapter.safetensors}) as
     * adapter {@code loadAs} (null: the saved name) and activates it. Keys may carry the saved
     * adapter name and another model prefix (a folder saved from a model with a head, e.g.
     * {@code bert.encoder…}, loads onto the bare encoder and vice versa); every tensor must find
     * its parameter with its shape and every parameter a tensor.
     */
    @SuppressWarnings("unchecked")
    public static String load(Module model, Path dir, String loadAs) {
        Path cfgFile = dir.resolve(CONFIG_NAME);
        Map<String, Object> json;
        try {
            json = new ObjectMapper().readValue(Files.readString(cfgFile, StandardCharsets.UTF_8), Map.class);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read " + cfgFile + ": " + e.getMessage(), e);
        }
        Object block = json.get("config");
        if (!(block instanceof Map)) {
            throw new IllegalArgumentException(cfgFile + " has no 'config' object (an AdapterHub adapter_config.json)");
        }
        BnConfig config = BnConfig.fromMap((Map<String, Object>) block, cfgFile.toString());
        String saved = String.valueOf(json.get("name"));
        String name = loadAs != null ? loadAs : saved;
        Object hs = json.get("hidden_size");
        Map<String, ResidualHookSite> sites = sites(model);
        if (hs instanceof Number n && !sites.isEmpty() && n.intValue() != sites.values().iterator().next().residualWidth()) {
            throw new IllegalArgumentException(cfgFile + ": hidden_size " + n + " does not match the model's "
                    + sites.values().iterator().next().residualWidth());
        }
        Path weights = dir.resolve(WEIGHTS_NAME);
        if (!Files.isRegularFile(weights)) {
            throw new IllegalArgumentException("no " + WEIGHTS_NAME + " in " + dir
                    + (Files.exists(dir.resolve(TORCH_WEIGHTS_NAME)) ? " (only " + TORCH_WEIGHTS_NAME
                    + "; save the adapter with use_safetensors=True)" : ""));
        }
        Map<String, INDArray> stored;
        try {
            stored = SafeTensors.load(weights);
        } catch (IOException e) {
            throw new PeftException("cannot read " + weights + ": " + e.getMessage(), e);
        }
        add(model, name, config, 0);
        Map<String, Parameter> params = parameters(model, name);
        Map<String, Parameter> bySuffix = new LinkedHashMap<>();
        String mark = ".adapters." + name + ".";
        for (Map.Entry<String, Parameter> e : params.entrySet()) {
            String k = e.getKey();
            bySuffix.put(k.substring(k.indexOf(firstBlockSegment(k))), e.getValue());
        }
        List<String> unused = new ArrayList<>();
        java.util.Set<Parameter> filled = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        for (Map.Entry<String, INDArray> e : stored.entrySet()) {
            String k = e.getKey().replace(".adapters." + saved + ".", mark);
            Parameter p = params.get(k);
            if (p == null) {
                p = bySuffix.get(k.substring(k.indexOf(firstBlockSegment(k))));
            }
            if (p == null) {
                unused.add(e.getKey());
                continue;
            }
            INDArray v = e.getValue();
            if (!Arrays.equals(v.shape(), p.value().shape())) {
                throw new IllegalArgumentException(weights + ": tensor " + e.getKey() + " has shape " + Arrays.toString(v.shape())
                        + ", the model's adapter parameter " + Arrays.toString(p.value().shape()));
            }
            p.value().assign(v.castTo(p.value().dataType()));
            filled.add(p);
        }
        if (!unused.isEmpty()) {
            throw new IllegalArgumentException(weights + ": tensors that fit no adapter parameter: " + unused);
        }
        List<String> missing = new ArrayList<>();
        params.forEach((k, p) -> {
            if (!filled.contains(p)) {
                missing.add(k);
            }
        });
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException(weights + ": no tensor for " + missing);
        }
        return name;
    }

    /** The key from its block-list segment on ({@code encoder.layer.}, {@code h.}, {@code layers.}), dropping a model prefix. */
    private static String firstBlockSegment(String key) {
        for (String seg : new String[]{"encoder.layer.", "h.", "layers."}) {
            int i = key.startsWith(seg) ? 0 : key.indexOf("." + seg);
            if (i >= 0) {
                return key.startsWith(seg) ? seg : key.substring(i + 1, i + 1 + seg.length());
            }
        }
        return key.isEmpty() ? key : key.substring(0, 1);
    }
}
