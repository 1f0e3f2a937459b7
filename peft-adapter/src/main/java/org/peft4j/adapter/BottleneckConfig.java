package org.peft4j.adapter;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.peft4j.core.peft.AdapterHubConfig;
import org.peft4j.core.peft.AdapterHubLayout;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.peft.TaskType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A bottleneck adapter ({@link BnConfig}) or an AdapterFusion over named adapters
 * ({@link FusionConfig}) as a {@link PeftConfig} of {@link BottleneckMethod}
 * ({@code peft_type} {@value #PEFT_TYPE}, used only inside peft4j: the folders are AdapterHub's,
 * {@link AdapterHubLayout}).
 *
 * <p>In a {@code peft4j train} recipe ({@link #fromJson}): {@code peft_type: BOTTLENECK} with
 * {@code config:} an AdapterHub preset name ({@code seq_bn}, {@code double_seq_bn}, {@code par_bn},
 * {@code pfeiffer}, {@code houlsby}) or a full config block, and any AdapterHub key
 * ({@code reduction_factor: 8}, {@code non_linearity: swish}, ...) beside it as an override; or, for
 * a fusion, {@code fusion:} {@code static} / {@code dynamic} / a fusion config block and
 * {@code adapters:} the AdapterHub folders of the adapters to fuse. The common PEFT keys
 * ({@code modules_to_save}, {@code task_type}, {@code base_model_name_or_path}) work as for every method.
 */
public final class BottleneckConfig extends PeftConfig implements AdapterHubConfig {
    public static final String PEFT_TYPE = "BOTTLENECK";
    private static final Set<String> COMMON = Set.of("peft_type", "task_type", "base_model_name_or_path", "revision",
            "inference_mode", "peft_version", "modules_to_save");

    private BnConfig adapter;
    private FusionConfig fusion;
    private List<String> fused = List.of();
    private Map<String, Path> folders = Map.of();
    /** The {@code model_type} of the AdapterHub file this config was read from, checked against the model; null when built here. */
    private String savedModelType;
    /** The {@code hidden_size} of that file, or null. */
    private Integer savedHiddenSize;
    private String source;

    private BottleneckConfig() {
    }

    /** A bottleneck adapter. */
    public static BottleneckConfig of(BnConfig config) {
        config.validate();
        BottleneckConfig c = new BottleneckConfig();
        c.adapter = config;
        return c;
    }

    /** A preset by AdapterHub's name. */
    public static BottleneckConfig preset(String name) {
        return of(BnConfig.preset(name));
    }

    /** An AdapterFusion over adapters already in the model, in fusion order. */
    public static BottleneckConfig fusion(FusionConfig config, List<String> adapters) {
        config.validate();
        if (adapters == null || adapters.size() < 2) {
            throw new IllegalArgumentException("an AdapterFusion needs at least two adapters, got " + adapters);
        }
        BottleneckConfig c = new BottleneckConfig();
        c.fusion = config;
        c.fused = List.copyOf(adapters);
        return c;
    }

    /**
     * An AdapterFusion over the adapters saved in {@code folders} (AdapterHub folders), each
     * loaded frozen under its saved name (or the folder's name when that is {@code default} or
     * taken) before the fusion is added.
     *
     * @throws IllegalArgumentException for fewer than two folders, a folder that is not an
     *                                  AdapterHub adapter, or adapters of different {@code hidden_size}
     */
    public static BottleneckConfig fusionOf(FusionConfig config, List<Path> folders) {
        if (folders == null || folders.size() < 2) {
            throw new IllegalArgumentException("an AdapterFusion needs at least two adapter folders, got " + folders);
        }
        Map<String, Path> named = new LinkedHashMap<>();
        Map<String, Object> sizes = new LinkedHashMap<>();
        ObjectMapper json = new ObjectMapper();
        for (Path f : folders) {
            Path file = f.resolve(AdapterHubLayout.CONFIG_NAME);
            JsonNode tree;
            try {
                tree = Files.isRegularFile(file) ? json.readTree(file.toFile()) : null;
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot parse " + file + ": " + e.getMessage(), e);
            }
            if (tree == null || !tree.path("config").isObject() || tree.has("peft_type")) {
                throw new IllegalArgumentException("fusion adapter " + f + " is not an AdapterHub adapter folder (no "
                        + AdapterHubLayout.CONFIG_NAME + " with a 'config' block)");
            }
            String name = tree.path("name").asText("");
            if (name.isEmpty() || name.equals(PeftModel.DEFAULT_ADAPTER) || named.containsKey(name) || !validName(name)) {
                Path abs = f.toAbsolutePath().normalize();
                // peft4j train writes <output_dir>/adapter: the run's folder names it
                Path named0 = abs.getFileName().toString().equals("adapter") && abs.getParent() != null ? abs.getParent() : abs;
                name = named0.getFileName().toString().replaceAll("[^A-Za-z0-9_-]", "_");
            }
            String base = name;
            for (int i = 2; named.containsKey(name); i++) {
                name = base + "_" + i;
            }
            named.put(name, f);
            sizes.put(file.toString(), tree.path("hidden_size").isNumber() ? tree.get("hidden_size").asInt() : null);
        }
        if (new java.util.HashSet<>(sizes.values()).size() > 1) {
            throw new IllegalArgumentException("a fusion over adapters of different hidden sizes (hidden_size " + sizes + ")");
        }
        BottleneckConfig c = fusion(config, new ArrayList<>(named.keySet()));
        c.folders = named;
        return c;
    }

    private static boolean validName(String n) {
        try {
            PeftModel.checkAdapterName(n);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /**
     * From a recipe's {@code peft} mapping (see the class comment); {@code source} names it in errors.
     */
    static BottleneckConfig fromJson(JsonNode tree, String source) {
        ObjectMapper m = new ObjectMapper();
        BottleneckConfig c;
        if (tree.has("fusion")) {
            JsonNode f = tree.get("fusion");
            FusionConfig fc = f.isTextual() ? FusionConfig.preset(f.asText())
                    : f.isObject() ? FusionConfig.fromMap(m.convertValue(f, Map.class), source)
                    : FusionConfig.fromMap(tree.path("config").isObject() ? m.convertValue(tree.get("config"), Map.class) : Map.of(), source);
            JsonNode ad = tree.path("adapters");
            if (!ad.isArray()) {
                throw new IllegalArgumentException(source + ": a fusion needs 'adapters', the list of AdapterHub adapter folders to fuse");
            }
            List<Path> folders = new ArrayList<>();
            ad.forEach(x -> folders.add(Path.of(x.asText())));
            c = fusionOf(fc, folders);
            for (Iterator<String> it = tree.fieldNames(); it.hasNext(); ) {
                String k = it.next();
                if (!COMMON.contains(k) && !Set.of("fusion", "adapters", "config", "adapter_names").contains(k)) {
                    throw new IllegalArgumentException(source + ": unknown AdapterFusion key '" + k + "'");
                }
            }
        } else {
            JsonNode cfg = tree.path("config");
            BnConfig bn;
            if (cfg.isTextual()) {
                bn = BnConfig.preset(cfg.asText());
            } else if (cfg.isObject()) {
                bn = BnConfig.fromMap(m.convertValue(cfg, Map.class), source);
            } else if (cfg.isMissingNode()) {
                bn = BnConfig.preset("seq_bn");
            } else {
                throw new IllegalArgumentException(source + ": 'config' must be an AdapterHub preset name or a config block, got " + cfg);
            }
            for (Iterator<Map.Entry<String, JsonNode>> it = tree.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (COMMON.contains(e.getKey()) || e.getKey().equals("config")) {
                    continue;
                }
                bn.set(e.getKey(), m.convertValue(e.getValue(), Object.class));   // throws naming an unknown key
            }
            try {
                bn.validate();
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(source + ": " + e.getMessage(), e);
            }
            c = of(bn);
        }
        c.source = source;
        if (tree.hasNonNull("task_type")) {
            c.setTaskType(TaskType.valueOf(tree.get("task_type").asText()));
        }
        if (tree.hasNonNull("base_model_name_or_path")) {
            c.setBaseModelNameOrPath(tree.get("base_model_name_or_path").asText());
        }
        if (tree.has("inference_mode")) {
            c.setInferenceMode(tree.get("inference_mode").asBoolean());
        }
        if (tree.path("modules_to_save").isArray()) {
            List<String> mts = new ArrayList<>();
            tree.get("modules_to_save").forEach(x -> mts.add(x.asText()));
            c.setModulesToSave(mts);
        }
        return c;
    }

    /** From an AdapterHub JSON (the whole {@code adapter_config.json} / {@code adapter_fusion_config.json} object). */
    @SuppressWarnings("unchecked")
    static BottleneckConfig fromAdapterHub(Map<String, Object> json, boolean isFusion, String source) {
        Map<String, Object> block = (Map<String, Object>) json.get("config");
        BottleneckConfig c;
        if (isFusion) {
            Object names = json.get("adapter_names");
            List<String> l = new ArrayList<>();
            if (names instanceof List<?> x) {
                x.forEach(n -> l.add(String.valueOf(n)));
            } else {
                l.addAll(List.of(String.valueOf(json.get("name")).split(",")));
            }
            c = fusion(FusionConfig.fromMap(block, source), l);
        } else {
            c = of(BnConfig.fromMap(block, source));
        }
        c.savedModelType = json.get("model_type") instanceof String s ? s : null;
        c.savedHiddenSize = json.get("hidden_size") instanceof Number n ? n.intValue() : null;
        c.source = source;
        return c;
    }

    @Override
    public String peftType() {
        return PEFT_TYPE;
    }

    /** The adapter's architecture (null for a fusion). */
    public BnConfig adapter() {
        return adapter;
    }

    /** The fusion's architecture (null for an adapter). */
    public FusionConfig fusionConfig() {
        return fusion;
    }

    @Override
    public boolean isFusion() {
        return fusion != null;
    }

    @Override
    public List<String> fusedAdapters() {
        return fused;
    }

    @Override
    public Map<String, Object> configBlock() {
        return isFusion() ? fusion.toMap() : adapter.toMap();
    }

    /** Folders to load before the fusion (name → folder); empty unless built by {@link #fusionOf}. */
    Map<String, Path> folders() {
        return folders;
    }

    String savedModelType() {
        return savedModelType;
    }

    Integer savedHiddenSize() {
        return savedHiddenSize;
    }

    /** Where this config was read from, or null. */
    String source() {
        return source;
    }

    @Override
    public void validate() {
        if (isFusion()) {
            fusion.validate();
        } else {
            adapter.validate();
        }
    }

    @Override
    public Map<String, Object> toMap() {
        Map<String, Object> m = super.toMap();
        m.put("config", configBlock());
        if (isFusion()) {
            m.put("fusion", true);
            m.put("adapter_names", fused);
            if (!folders.isEmpty()) {
                List<String> f = new ArrayList<>();
                folders.values().forEach(p -> f.add(p.toString()));
                m.put("adapters", f);
            }
        }
        return new java.util.TreeMap<>(m);
    }

    @Override
    public PeftConfig copy() {
        BottleneckConfig c = new BottleneckConfig();
        c.adapter = adapter == null ? null : BnConfig.fromMap(adapter.toMap(), "copy");
        c.fusion = fusion == null ? null : FusionConfig.fromMap(fusion.toMap(), "copy");
        c.fused = fused;
        c.folders = folders;
        c.savedModelType = savedModelType;
        c.savedHiddenSize = savedHiddenSize;
        c.source = source;
        c.taskType = taskType;
        c.baseModelNameOrPath = baseModelNameOrPath;
        c.revision = revision;
        c.inferenceMode = inferenceMode;
        c.peftVersion = peftVersion;
        c.modulesToSave = modulesToSave;
        c.seed = seed;
        return c;
    }
}
