package org.peft4j.core.peft;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.CheckpointWeights;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.ResidualHookSite;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * AdapterHub's folders ({@code adapters} v1.2, {@code loading.py}, {@code utils.py}), for configs
 * that are {@link AdapterHubConfig}s:
 * <ul>
 *   <li>an adapter: {@code adapter_config.json} = {@code {"config": {...}, "hidden_size",
 *       "model_class", "model_name", "model_type", "name", "version": "adapters.1.2.0"}} (indent 2,
 *       sorted keys) and {@code adapter.safetensors} (what {@code save_adapter(...,
 *       use_safetensors=True)} writes; {@code pytorch_adapter.bin} is read too) holding the model's
 *       own state-dict keys with the adapter name inside ({@code bert.encoder.layer.0.output.adapters.<name>.adapter_down.0.weight});</li>
 *   <li>an AdapterFusion: {@code adapter_fusion_config.json} (the same keys plus {@code adapter_names})
 *       and {@code model_adapter_fusion.safetensors} (or {@code pytorch_model_adapter_fusion.bin}) with
 *       {@code ….adapter_fusion_layer.<fusion name>.query.weight} keys; peft4j writes each fused adapter
 *       into {@code <dir>/<adapter name>/} beside it (as {@code save_all_adapters} names them) and
 *       reads them from there;</li>
 *   <li>a prediction head, when the adapter trains modules in full ({@code modules_to_save}, e.g. a
 *       new classifier): {@code head_config.json} and {@code model_head.safetensors} (or
 *       {@code pytorch_model_head.bin}) with the head's own keys ({@code classifier.weight}), as
 *       AdapterHub saves the head of a model with a static head.</li>
 * </ul>
 * Keys are the saved keys without {@code base_model.model.}; a peft4j layer that is itself the
 * adapter dictionary (BERT's {@code output.adapters}) holds its fusion layers inside, which
 * AdapterHub keeps beside the dictionary ({@code output.adapter_fusion_layer.…}): the one key rewrite.
 * Loading accepts another adapter name (renamed as AdapterHub's {@code load_as}) and another model
 * prefix (a folder saved from a bare encoder loads onto a model with a head and back).
 */
public final class AdapterHubLayout implements AdapterLayout {
    public static final String CONFIG_NAME = "adapter_config.json";
    public static final String WEIGHTS_NAME = "adapter.safetensors";
    public static final String TORCH_WEIGHTS_NAME = "pytorch_adapter.bin";
    public static final String FUSION_CONFIG_NAME = "adapter_fusion_config.json";
    public static final String FUSION_WEIGHTS_NAME = "model_adapter_fusion.safetensors";
    public static final String TORCH_FUSION_WEIGHTS_NAME = "pytorch_model_adapter_fusion.bin";
    public static final String HEAD_CONFIG_NAME = "head_config.json";
    public static final String HEAD_WEIGHTS_NAME = "model_head.safetensors";
    public static final String TORCH_HEAD_WEIGHTS_NAME = "pytorch_model_head.bin";
    /** The {@code version} written ({@code "adapters." + __version__}). */
    public static final String VERSION = "adapters.1.2.0";
    static final String FUSION_DICT = "adapter_fusion_layer";

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern BLOCK_TAIL = Pattern.compile("(?:^|\\.)((?:encoder\\.layer|h|layers)\\.\\d+\\..*)$");

    @Override
    public String name() {
        return "adapterhub";
    }

    @Override
    public boolean writes(PeftConfig config) {
        return config instanceof AdapterHubConfig;
    }

    @Override
    public boolean recognizes(Path dir) {
        if (Files.isRegularFile(dir.resolve(FUSION_CONFIG_NAME))) {
            return true;
        }
        Path f = dir.resolve(CONFIG_NAME);
        if (!Files.isRegularFile(f)) {
            return false;
        }
        try {
            var tree = JSON.readTree(f.toFile());
            return tree != null && tree.isObject() && !tree.has("peft_type") && tree.path("config").isObject();
        } catch (IOException e) {
            return false;   // PEFT's reader reports the broken file
        }
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> readJson(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("no " + file.getFileName() + " in " + file.getParent());
        }
        Object v;
        try {
            v = JSON.readValue(Files.readString(file, StandardCharsets.UTF_8), Object.class);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot parse " + file + " as JSON: " + e.getMessage(), e);
        }
        if (!(v instanceof Map)) {
            throw new IllegalArgumentException(file + " must hold a JSON object");
        }
        Map<String, Object> m = (Map<String, Object>) v;
        if (!(m.get("config") instanceof Map)) {
            throw new IllegalArgumentException(file + ": 'config' must be an object (AdapterHub's config block), got "
                    + m.get("config"));
        }
        if (!(m.get("name") instanceof String)) {
            throw new IllegalArgumentException(file + ": 'name' must be a string, got " + m.get("name"));
        }
        return m;
    }

    /** The config an installed method reads from an AdapterHub JSON. */
    private static PeftConfig config(Map<String, Object> json, boolean fusion, Path file) {
        for (PeftMethod m : PeftMethods.all()) {
            PeftConfig c = m.configFromAdapterHub(json, fusion, file.toString());
            if (c != null) {
                if (json.get("model_name") instanceof String s) {
                    c.setBaseModelNameOrPath(s);
                }
                return c;
            }
        }
        Object arch = ((Map<?, ?>) json.get("config")).get("architecture");
        throw new IllegalArgumentException(file + ": no installed method reads AdapterHub "
                + (fusion ? "fusions" : "config.architecture '" + arch + "'") + " (bottleneck adapters need peft-adapter on the class path)");
    }

    @Override
    public List<StoredAdapter> list(Path dir, String loadAs) {
        Path fusionFile = dir.resolve(FUSION_CONFIG_NAME);
        if (!Files.isRegularFile(fusionFile)) {
            Path file = dir.resolve(CONFIG_NAME);
            Map<String, Object> json = readJson(file);
            PeftConfig c = withHead(config(json, false, file), dir);
            return List.of(new StoredAdapter(loadAs, (String) json.get("name"), c, dir));
        }
        Map<String, Object> json = readJson(fusionFile);
        String fusionName = (String) json.get("name");
        Object names = json.getOrDefault("adapter_names", fusionName);
        List<String> fused = new ArrayList<>();
        if (names instanceof String s) {
            fused.addAll(List.of(s.split(",")));
        } else if (names instanceof List<?> l && !l.isEmpty()) {
            l.forEach(x -> fused.add(String.valueOf(x)));
        } else {
            throw new IllegalArgumentException(fusionFile + ": 'adapter_names' must be a non-empty list, got " + names);
        }
        List<StoredAdapter> out = new ArrayList<>();
        Map<String, Object> sizes = new LinkedHashMap<>();
        sizes.put(FUSION_CONFIG_NAME, json.get("hidden_size"));
        for (String a : fused) {
            try {
                PeftModel.checkAdapterName(a);   // a sub-folder name: it may not lead out of the fusion folder
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(fusionFile + ": adapter_names: " + e.getMessage(), e);
            }
            Path sub = dir.resolve(a);
            Path file = sub.resolve(CONFIG_NAME);
            if (!Files.isRegularFile(file)) {
                throw new IllegalArgumentException(fusionFile + ": adapter_names lists '" + a + "' but " + file
                        + " does not exist (peft4j keeps each fused adapter in <fusion folder>/<adapter name>/)");
            }
            Map<String, Object> sj = readJson(file);
            sizes.put(a + "/" + CONFIG_NAME, sj.get("hidden_size"));
            out.add(new StoredAdapter(a, (String) sj.get("name"), config(sj, false, file), sub));
        }
        if (new LinkedHashSet<>(sizes.values()).size() > 1) {
            throw new IllegalArgumentException(fusionFile + ": a fusion over adapters of different hidden sizes (hidden_size "
                    + sizes + ")");
        }
        out.add(new StoredAdapter(fusionName, fusionName, withHead(config(json, true, fusionFile), dir), dir));
        return out;
    }

    /** A folder with a prediction head trains (and loads) those modules in full: {@code modules_to_save} from the head's keys. */
    private static PeftConfig withHead(PeftConfig c, Path dir) {
        Path head = firstExisting(dir, HEAD_WEIGHTS_NAME, TORCH_HEAD_WEIGHTS_NAME);
        if (head == null) {
            return c;
        }
        Set<String> modules = new LinkedHashSet<>();
        try (CheckpointWeights w = CheckpointWeights.openFile(head)) {
            for (String k : w.keys()) {
                int i = k.lastIndexOf('.');
                if (i <= 0) {
                    throw new IllegalArgumentException(head + ": head tensor '" + k + "' names no module");
                }
                modules.add(k.substring(0, i));
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read " + head + ": " + e.getMessage(), e);
        }
        c.setModulesToSave(new ArrayList<>(modules));
        return c;
    }

    private static Path firstExisting(Path dir, String... names) {
        for (String n : names) {
            if (Files.isRegularFile(dir.resolve(n))) {
                return dir.resolve(n);
            }
        }
        return null;
    }

    @Override
    public Path folder(Path root, String name, PeftConfig config, String activeAdapter) {
        // the folder is about the active adapter (AdapterHub's save_adapter(dir, name)); the others, e.g. the
        // adapters a fusion fuses, go to <dir>/<name>/ (as save_all_adapters names them)
        return name.equals(activeAdapter) ? root : root.resolve(name);
    }

    /** In-model key (saved key without {@code base_model.model.}) → AdapterHub's key. */
    static String toStored(String key) {
        return key.replace(".adapters." + FUSION_DICT + ".", "." + FUSION_DICT + ".");
    }

    /** AdapterHub's key → in-model key for a model whose layer at {@code ….adapters} holds its fusion layers. */
    static String toModel(String key) {
        int i = key.indexOf("." + FUSION_DICT + ".");
        if (i < 0) {
            return key;
        }
        String before = key.substring(0, i);
        return before.endsWith("adapters") ? key : before + ".adapters" + key.substring(i);
    }

    private static boolean isAdapterKey(String key, boolean fusion) {
        return fusion ? key.contains(FUSION_DICT + ".") : key.contains(".adapters.") || key.contains("_adapters.");
    }

    @Override
    public void write(Path folder, String name, PeftConfig config, Map<String, INDArray> state, Module model) throws IOException {
        AdapterHubConfig ah = (AdapterHubConfig) config;
        Map<String, INDArray> weights = new TreeMap<>();
        Map<String, INDArray> head = new TreeMap<>();
        for (Map.Entry<String, INDArray> e : state.entrySet()) {
            String k = e.getKey().startsWith(PeftModel.MODEL_PREFIX) ? e.getKey().substring(PeftModel.MODEL_PREFIX.length()) : e.getKey();
            if (isAdapterKey(k, ah.isFusion())) {
                weights.put(toStored(k), e.getValue());
            } else {
                head.put(k, e.getValue());
            }
        }
        Map<String, Object> json = envelope(config, name, model);
        json.put("config", ah.configBlock());
        if (ah.isFusion()) {
            json.put("adapter_names", ah.fusedAdapters());
        }
        Files.writeString(folder.resolve(ah.isFusion() ? FUSION_CONFIG_NAME : CONFIG_NAME), PythonJson.write(json), StandardCharsets.UTF_8);
        SafeTensors.write(folder.resolve(ah.isFusion() ? FUSION_WEIGHTS_NAME : WEIGHTS_NAME), weights);
        if (!head.isEmpty()) {
            Map<String, Object> hj = envelope(config, null, model);
            hj.put("config", null);
            for (Map.Entry<String, INDArray> e : head.entrySet()) {
                if (e.getKey().endsWith(".weight") && e.getValue().rank() == 2 && !hj.containsKey("num_labels")) {
                    int n = (int) e.getValue().size(0);
                    Map<String, Object> label2id = new TreeMap<>();
                    for (int i = 0; i < n; i++) {
                        label2id.put("LABEL_" + i, i);
                    }
                    hj.put("label2id", label2id);
                    hj.put("num_labels", n);
                }
            }
            Files.writeString(folder.resolve(HEAD_CONFIG_NAME), PythonJson.write(hj), StandardCharsets.UTF_8);
            SafeTensors.write(folder.resolve(HEAD_WEIGHTS_NAME), head);
        }
    }

    /** {@code hidden_size}, {@code model_class}, {@code model_name}, {@code model_type}, {@code name}, {@code version}. */
    private static Map<String, Object> envelope(PeftConfig config, String name, Module model) {
        Map<String, Object> m = new TreeMap<>();
        ResidualHookSite site = null;
        for (Module x : model.namedModules().values()) {
            if (x instanceof ResidualHookSite s) {
                site = s;
                break;
            }
        }
        m.put("hidden_size", site == null ? null : site.residualWidth());
        m.put("model_class", model.getClass().getSimpleName());
        m.put("model_name", config.baseModelNameOrPath());
        m.put("model_type", site == null ? null : modelType(site));
        m.put("name", name);
        m.put("version", VERSION);
        return m;
    }

    private static String modelType(ResidualHookSite site) {
        String n = site.getClass().getName();
        if (n.contains(".bert.")) {
            return "bert";
        }
        if (n.contains(".gpt2.")) {
            return "gpt2";
        }
        return n.contains(".llama.") ? "llama" : null;
    }

    private static List<Path> files(StoredAdapter a) {
        boolean fusion = ((AdapterHubConfig) a.config()).isFusion();
        List<Path> out = new ArrayList<>();
        Path w = fusion ? firstExisting(a.folder(), FUSION_WEIGHTS_NAME, TORCH_FUSION_WEIGHTS_NAME)
                : firstExisting(a.folder(), WEIGHTS_NAME, TORCH_WEIGHTS_NAME);
        if (w == null) {
            throw new IllegalArgumentException(fusion
                    ? "no " + FUSION_WEIGHTS_NAME + " (or " + TORCH_FUSION_WEIGHTS_NAME + ") in " + a.folder()
                    : "no " + WEIGHTS_NAME + " (or " + TORCH_WEIGHTS_NAME + ") in " + a.folder());
        }
        out.add(w);
        Path h = firstExisting(a.folder(), HEAD_WEIGHTS_NAME, TORCH_HEAD_WEIGHTS_NAME);
        if (h != null && a.config().modulesToSave() != null && !a.config().modulesToSave().isEmpty()) {
            out.add(h);
        }
        return out;
    }

    @Override
    public Map<String, INDArray> read(StoredAdapter a, Set<String> expected) {
        Map<String, String> byTail = new LinkedHashMap<>();
        Set<String> ambiguous = new LinkedHashSet<>();
        for (String k : expected) {
            Matcher m = BLOCK_TAIL.matcher(k.substring(Math.min(k.length(), PeftModel.MODEL_PREFIX.length())));
            if (m.find() && byTail.put(m.group(1), k) != null) {
                ambiguous.add(m.group(1));
            }
        }
        ambiguous.forEach(byTail::remove);
        Map<String, INDArray> out = new LinkedHashMap<>();
        for (Path file : files(a)) {
            for (Map.Entry<String, INDArray> e : PeftLayout.readAll(file).entrySet()) {
                String k = e.getKey();
                if (!a.savedName().equals(a.name())) {
                    k = k.replace(".adapters." + a.savedName() + ".", ".adapters." + a.name() + ".")
                            .replace(FUSION_DICT + "." + a.savedName() + ".", FUSION_DICT + "." + a.name() + ".");
                }
                String saved = PeftModel.MODEL_PREFIX + toModel(k);
                if (!expected.contains(saved)) {
                    Matcher m = BLOCK_TAIL.matcher(toModel(k));
                    if (m.find() && byTail.containsKey(m.group(1))) {
                        saved = byTail.get(m.group(1));
                    } else {
                        saved = e.getKey();   // reported by the strict loader under the file's own key
                    }
                }
                out.put(saved, e.getValue());
            }
        }
        return out;
    }

    @Override
    public String source(StoredAdapter a) {
        List<Path> f = files(a);
        return f.size() == 1 ? f.get(0).toString() : f.toString();
    }
}
