package org.peft4j.adapter;

import com.fasterxml.jackson.databind.JsonNode;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.PlainResidual;
import org.peft4j.core.nn.ResidualHookSite;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftMethod;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Bottleneck adapters and AdapterFusion (AdapterHub {@code adapters} v1.2) as a {@link PeftMethod}
 * ({@code peft_type} {@value BottleneckConfig#PEFT_TYPE} inside peft4j; folders in AdapterHub's layout,
 * {@link org.peft4j.core.peft.AdapterHubLayout}). {@link #inject} puts a {@link BottleneckLayer} into
 * each residual-hook slot of the model's blocks ({@link ResidualHookSite}: BERT, GPT-2,
 * LLaMA/Mistral/Qwen2) the config asks for ({@code mh_adapter}: after attention, {@code output_adapter}:
 * after the feed-forward block; {@code leave_out} layers skipped) and one {@link BottleneckAdapter}
 * per place; a fusion config adds one {@link AdapterFusionLayer} to every layer holding all the adapters
 * it fuses. The rest — activation, training only the active adapter (a fusion trains, the adapters it
 * fuses stay frozen), disabling, deleting, saving, strict loading — is {@link org.peft4j.core.peft.PeftModel}'s.
 */
public final class BottleneckMethod implements PeftMethod {
    /** Names that are module names inside a bottleneck layer. */
    private static final Set<String> RESERVED = Set.of(BottleneckLayer.BASE, BottleneckLayer.ADAPTERS, BottleneckLayer.FUSIONS);

    @Override
    public String peftType() {
        return BottleneckConfig.PEFT_TYPE;
    }

    @Override
    public Class<? extends PeftConfig> configClass() {
        return BottleneckConfig.class;
    }

    @Override
    public PeftConfig configFromJson(JsonNode tree, String source) {
        return BottleneckConfig.fromJson(tree, source);
    }

    @Override
    public PeftConfig configFromAdapterHub(Map<String, Object> json, boolean fusion, String source) {
        Object block = json.get("config");
        if (!fusion && block instanceof Map<?, ?> m && m.get("architecture") != null && !"bottleneck".equals(m.get("architecture"))) {
            return null;
        }
        return BottleneckConfig.fromAdapterHub(json, fusion, source);
    }

    @Override
    public Map<String, Path> foldersToLoadFirst(PeftConfig config) {
        return ((BottleneckConfig) config).folders();
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

    /** The family of a site, as AdapterHub's {@code model_type} names it. */
    static String family(ResidualHookSite site) {
        String n = site.getClass().getName();
        return n.contains(".bert.") ? "bert" : n.contains(".gpt2.") ? "gpt2" : n.contains(".llama.") ? "llama" : "unknown";
    }

    @Override
    public List<String> inject(Module model, PeftConfig config, String adapterName, boolean forLoading) {
        BottleneckConfig c = (BottleneckConfig) config;
        if (RESERVED.contains(adapterName)) {
            throw new IllegalArgumentException("adapter name '" + adapterName + "' is a module name inside bottleneck layers "
                    + RESERVED + "; choose another");
        }
        String where = c.source() != null ? c.source() + ": " : "";
        Map<String, ResidualHookSite> sites = sites(model);
        if (sites.isEmpty()) {
            throw new IllegalArgumentException(where + "a " + model.getClass().getSimpleName() + " has no place for bottleneck adapters"
                    + (c.savedModelType() != null ? " (the adapter's model_type is '" + c.savedModelType() + "')" : "")
                    + ": peft4j inserts them into BERT, GPT-2 and LLaMA/Mistral/Qwen2 blocks");
        }
        String family = family(sites.values().iterator().next());
        String saved = c.savedModelType();
        if (saved != null && !saved.equals(family) && !(family.equals("llama") && Set.of("llama", "mistral", "qwen2").contains(saved))) {
            throw new IllegalArgumentException(where + "model_type '" + saved + "': the adapter was saved for a " + saved
                    + " model, this is a " + family + " model (" + model.getClass().getSimpleName() + ")");
        }
        int width = sites.values().iterator().next().residualWidth();
        if (c.savedHiddenSize() != null && c.savedHiddenSize() != width) {
            throw new IllegalArgumentException(where + "hidden_size " + c.savedHiddenSize() + " does not match the model's "
                    + width + (c.isFusion() ? " (a fusion over adapters of different hidden sizes)" : ""));
        }
        return c.isFusion() ? injectFusion(model, c, adapterName) : injectAdapter(model, sites, c, adapterName);
    }

    private static List<String> injectAdapter(Module model, Map<String, ResidualHookSite> sites, BottleneckConfig c, String name) {
        BnConfig config = c.adapter();
        config.validate();
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
                long s = config.initWeightsSeed() != null ? config.initWeightsSeed() : mix(c.seed(), path + "\u0000" + name);
                BottleneckAdapter a;
                try {
                    a = new BottleneckAdapter(config, site.residualWidth(), site.layerIndex(), s);
                } catch (IllegalArgumentException ex) {
                    throw new IllegalArgumentException((c.source() != null ? c.source() + ": " : "") + ex.getMessage(), ex);
                }
                built.put(path, a);
                where.put(path, new String[]{e.getKey(), slot.getKey()});
            }
        }
        if (built.isEmpty()) {
            throw new IllegalArgumentException("bottleneck adapter '" + name + "': config.leave_out " + leaveOut
                    + " leaves no layer to adapt");
        }
        List<String> out = new ArrayList<>();
        for (Map.Entry<String, BottleneckAdapter> e : built.entrySet()) {
            String[] w = where.get(e.getKey());
            ResidualHookSite site = sites.get(w[0]);
            Module hook = site.residualHook(w[1]);
            if (!(hook instanceof BottleneckLayer)) {
                BottleneckLayer layer = new BottleneckLayer(!w[1].equals("adapters"), site.residualWidth());
                if (hook instanceof PlainResidual) {
                    model.replace(e.getKey(), layer);     // the slot of an unloaded layer
                } else {
                    site.insertResidualHook(w[1], layer);
                }
                hook = layer;
            }
            ((BottleneckLayer) hook).addAdapter(name, e.getValue());
            out.add(e.getKey());
        }
        return out;
    }

    private static List<String> injectFusion(Module model, BottleneckConfig c, String name) {
        List<String> fused = c.fusedAdapters();
        Map<String, BottleneckLayer> layers = layers(model);
        for (String a : fused) {
            if (layers.values().stream().noneMatch(l -> l.adapter(a) != null)) {
                throw new IllegalArgumentException("AdapterFusion '" + name + "' fuses adapter '" + a
                        + "', which is not a bottleneck adapter of the model (adapters: " + adapterNames(layers) + ")");
            }
        }
        // AdapterHub's common_config_value(adapter_names, location_key): the fused adapters sit at the same places
        for (String key : List.of("mh_adapter", "output_adapter")) {
            Map<String, Object> seen = new LinkedHashMap<>();
            for (String a : fused) {
                for (BottleneckLayer l : layers.values()) {
                    if (l.adapter(a) != null) {
                        seen.put(a, l.adapter(a).config().toMap().get(key));
                        break;
                    }
                }
            }
            if (new java.util.HashSet<>(seen.values()).size() > 1) {
                throw new IllegalArgumentException("AdapterFusion '" + name + "': all fused adapters must define the same config." + key
                        + " (" + seen + ")");
            }
        }
        Double p = c.fusionConfig().dropoutProb();
        double dropout = p != null ? p : attentionDropout(model);
        List<String> out = new ArrayList<>();
        for (Map.Entry<String, BottleneckLayer> e : layers.entrySet()) {
            BottleneckLayer l = e.getValue();
            if (fused.stream().allMatch(a -> l.adapter(a) != null)) {
                for (String a : fused) {
                    if (l.adapter(a).hiddenSize() != l.hiddenSize()) {
                        throw new IllegalArgumentException("a fusion over adapters of different hidden sizes at " + e.getKey());
                    }
                }
                l.addFusion(name, fused, new AdapterFusionLayer(c.fusionConfig(), l.hiddenSize(), dropout,
                        mix(c.seed(), e.getKey() + "\u0000" + name)));
                out.add(e.getKey());
            }
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException("AdapterFusion '" + name + "': adapters " + fused + " share no place in the model");
        }
        return out;
    }

    private static List<String> adapterNames(Map<String, BottleneckLayer> layers) {
        java.util.LinkedHashSet<String> s = new java.util.LinkedHashSet<>();
        layers.values().forEach(l -> l.adapterNames().stream().filter(n -> l.adapter(n) != null).forEach(s::add));
        return List.copyOf(s);
    }

    /** AdapterHub's {@code getattr(model_config, "attention_probs_dropout_prob", 0)}. */
    private static double attentionDropout(Module model) {
        for (Module m : model.namedModules().values()) {
            if (m instanceof BertModel b) {
                return b.config().attentionProbsDropoutProb();
            }
        }
        return 0.0;
    }

    static long mix(long seed, String s) {
        long h = seed * 0x9E3779B97F4A7C15L;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            h = (h ^ (b & 0xff)) * 0x100000001B3L;
        }
        return h;
    }
}
