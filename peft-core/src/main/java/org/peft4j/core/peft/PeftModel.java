package org.peft4j.core.peft;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.model.Backbone;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.model.HeadModel;
import org.peft4j.core.model.InputPreparation;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.nn.StateDictLoader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * A model with one or more adapters of one PEFT method. It is a {@link Module} that wraps the
 * user's model as {@code base_model.model}, so its parameter names are PEFT's
 * ({@code base_model.model.encoder.layer.0.attention.self.query.lora_A.default.weight}).
 *
 * <p>The adapters live inside the user's model (it was rewritten in place): run the model as
 * before, via {@link #baseModel()} or the original reference, and the active adapter takes part.
 * Only the active adapter's parameters are trainable ({@link #trainableParameters()}); every base
 * parameter is frozen.
 *
 * <p>Adapter folders are written and read through an {@link AdapterLayout} ({@link AdapterLayouts}):
 * PEFT's ({@code adapter_config.json} and {@code adapter_model.safetensors}, the adapter named
 * {@code "default"} in the folder itself and every other adapter in {@code <dir>/<name>/}) for
 * PEFT methods, AdapterHub's for bottleneck adapters and AdapterFusion.
 */
public class PeftModel extends Module implements InputPreparation {
    private static final Logger LOG = LoggerFactory.getLogger(PeftModel.class);

    public static final String CONFIG_NAME = "adapter_config.json";
    public static final String WEIGHTS_NAME = "adapter_model.safetensors";
    /** PEFT's legacy adapter weights ({@code torch.save}), read when no safetensors file is there. */
    public static final String TORCH_WEIGHTS_NAME = "adapter_model.bin";
    /** The prefix of every saved tensor key of a non-prompt method. */
    public static final String MODEL_PREFIX = "base_model.model.";
    public static final String DEFAULT_ADAPTER = "default";
    /** The {@code peft_version} written to saved configs. */
    public static final String PEFT4J_VERSION = "peft4j-0.1.0";

    /** Test seam: runs on the staging folder after every file is written and before it replaces the target. */
    static volatile Consumer<Path> beforeCommitHook;

    private final PeftMethod method;
    private final Map<String, PeftConfig> configs = new LinkedHashMap<>();
    private String activeAdapter;
    private int disabledDepth;
    private boolean unloaded;

    /** The {@code base_model} node: holds the user's model as {@code model}, as PEFT's tuner does. */
    public static final class TunerModel extends Module {
        TunerModel(Module model) {
            registerModule("model", model);
        }

        public Module model() {
            return child("model");
        }
    }

    PeftModel(Module model, PeftConfig config, String adapterName, boolean forLoading) {
        if (model == null) {
            throw new IllegalArgumentException("model must not be null");
        }
        if (model instanceof PeftModel) {
            throw new IllegalArgumentException("model is already a PeftModel; use addAdapter to add another adapter");
        }
        checkAdapterName(adapterName);
        this.method = PeftMethods.forConfig(config);
        boolean wasTraining = model.isTraining();
        TreeState before = TreeState.of(model);
        registerModule("base_model", new TunerModel(model));
        if (!wasTraining) {
            eval();
        }
        model.freeze();
        try {
            injectAdapter(config.copy(), adapterName, forLoading);
        } catch (RuntimeException e) {
            before.restore(model);   // the caller's model is as it was: not frozen, nothing wrapped
            throw e;
        }
        activeAdapter = adapterName;
        activateLayers(adapterName);
        refreshTrainable();
        if (method.preparesInputs() && model instanceof HeadModel h) {
            h.setInputPreparation(this);
        }
    }

    private void removeInputPreparation() {
        if (baseModel() instanceof HeadModel h && h.inputPreparation() == this) {
            h.setInputPreparation(null);
        }
    }

    /**
     * What an adapter operation may change in the user's model tree: which modules it holds and
     * each parameter's trainable flag. A failed apply, load or add restores both, so the model is
     * usable again and a retry does not trip over half-injected layers.
     */
    private record TreeState(Set<Module> modules, Map<Parameter, Boolean> trainable) {
        static TreeState of(Module model) {
            Set<Module> mods = Collections.newSetFromMap(new IdentityHashMap<>());
            mods.addAll(model.namedModules().values());
            Map<Parameter, Boolean> flags = new IdentityHashMap<>();
            for (Parameter p : model.parameters()) {
                flags.put(p, p.isTrainable());
            }
            return new TreeState(mods, flags);
        }

        /** Puts back what every new adapter layer wraps, then the trainable flags. */
        void restore(Module model) {
            // pre-order: an outer new wrapper is replaced before anything new inside it is visited
            for (Map.Entry<String, Module> e : new ArrayList<>(model.namedModules().entrySet())) {
                String key = e.getKey();
                Module m = e.getValue();
                if (key.isEmpty() || modules.contains(m) || moduleAt(model, key) != m) {
                    continue;
                }
                if (m instanceof AdapterLayer a) {
                    model.replace(key, a.baseLayer());
                }
            }
            trainable.forEach(Parameter::setTrainable);
        }

        /** The module at a dotted path, or null when the path no longer exists. */
        private static Module moduleAt(Module root, String path) {
            Module m = root;
            for (String part : path.split("\\.")) {
                m = m.child(part);
                if (m == null) {
                    return null;
                }
            }
            return m;
        }
    }

    /**
     * Runs a change that adds adapter {@code adapterName} (new to this model); if it fails, the
     * adapter is taken out of every layer again and the tree and flags are restored.
     */
    private void addingAdapter(String adapterName, Runnable change) {
        Module model = baseModel();
        TreeState before = TreeState.of(model);
        try {
            change.run();
        } catch (RuntimeException e) {
            for (AdapterLayer l : layers().values()) {
                l.deleteAdapter(adapterName);            // from layers that already held other adapters
            }
            before.restore(model);
            configs.remove(adapterName);
            activateLayers(activeAdapter);
            throw e;
        }
    }

    // ---- structure ------------------------------------------------------------------------

    /** The user's model, with the adapters injected (PEFT's {@code get_base_model()}). */
    public Module baseModel() {
        return child("base_model", TunerModel.class).model();
    }

    public PeftMethod method() {
        return method;
    }

    public String activeAdapter() {
        return activeAdapter;
    }

    /** Adapter names in insertion order. */
    public List<String> adapterNames() {
        return new ArrayList<>(configs.keySet());
    }

    /** The config of an adapter (a live reference; do not change it after the adapter is built). */
    public PeftConfig config(String adapterName) {
        PeftConfig c = configs.get(adapterName);
        if (c == null) {
            throw new IllegalArgumentException("no adapter '" + adapterName + "' (adapters: " + configs.keySet() + ")");
        }
        return c;
    }

    public PeftConfig activeConfig() {
        return config(activeAdapter);
    }

    /**
     * Adapter names become module and folder names: they must be non-empty and must not contain
     * dots, path separators or "..".
     */
    public static void checkAdapterName(String name) {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("adapter name must not be empty");
        }
        if (name.contains("/") || name.contains("\\") || name.contains("..") || name.contains(".")
                || name.contains(java.io.File.separator) || name.indexOf('\0') >= 0 || name.isBlank()) {
            throw new IllegalArgumentException("invalid adapter name '" + name
                    + "': it must not contain '/', '\\\\', '.', '..' or be blank");
        }
        if (name.equals(MixedBatch.BASE)) {
            throw new IllegalArgumentException("adapter name '" + MixedBatch.BASE + "' is reserved for the base model in mixed batches");
        }
    }

    private void checkLive() {
        if (unloaded) {
            throw new IllegalStateException("this PeftModel was unloaded (mergeAndUnload/unload); its adapters are gone");
        }
    }

    private void requireNewName(String adapterName) {
        if (configs.containsKey(adapterName)) {
            throw new IllegalArgumentException("adapter '" + adapterName + "' already exists (adapters: " + configs.keySet() + ")");
        }
    }

    private void injectAdapter(PeftConfig config, String adapterName, boolean forLoading) {
        requireNewName(adapterName);
        if (!method.configClass().isInstance(config)) {
            throw new IllegalArgumentException("adapter '" + adapterName + "' is " + config.peftType() + " but this model holds "
                    + method.peftType() + " adapters; one PeftModel holds adapters of one method");
        }
        config.validate();
        Module model = baseModel();
        List<String> targets = method.inject(model, config, adapterName, forLoading);
        if (config.modulesToSave() != null && !config.modulesToSave().isEmpty()) {
            ModulesToSaveWrapper.inject(model, config.modulesToSave(), adapterName);
        }
        configs.put(adapterName, config);
        LOG.debug("adapter '{}' ({}) added to {} modules: {}", adapterName, config.peftType(), targets.size(), targets);
    }

    /** Path (relative to the user's model) → adapter layer, in tree order: the one walk every operation uses. */
    private Map<String, AdapterLayer> layers() {
        return layers(baseModel());
    }

    private static Map<String, AdapterLayer> layers(Module root) {
        Map<String, AdapterLayer> out = new LinkedHashMap<>();
        for (Map.Entry<String, Module> e : root.namedModules().entrySet()) {
            if (e.getValue() instanceof AdapterLayer l) {
                out.put(e.getKey(), l);
            }
        }
        return out;
    }

    private static String join(String path, String suffix) {
        return path.isEmpty() ? suffix : path + "." + suffix;
    }

    /** Every layer uses {@code adapterName} (none when null); layers that do not hold it compute their base. */
    private void activateLayers(String adapterName) {
        List<String> names = adapterName == null ? List.of() : List.of(adapterName);
        for (AdapterLayer l : layers().values()) {
            l.setActiveAdapters(names);
        }
    }

    private boolean anyMerged() {
        for (AdapterLayer l : layers().values()) {
            if (l.isMerged()) {
                return true;
            }
        }
        return false;
    }

    private void unmergeLayers() {
        for (AdapterLayer l : layers().values()) {
            l.unmerge();
        }
    }

    /** Every parameter that trains with an adapter (its layers' tensors, the method's extra parameters, modules-to-save copies). */
    private Map<String, Parameter> parametersOf(String adapterName) {
        Module model = baseModel();
        Map<String, Parameter> out = new LinkedHashMap<>();
        for (Map.Entry<String, AdapterLayer> e : layers().entrySet()) {
            e.getValue().adapterParameters(adapterName).forEach((k, p) -> out.put(join(e.getKey(), k), p));
        }
        out.putAll(method.extraParameters(model, configs.get(adapterName), adapterName));
        return out;
    }

    /** Saved key → parameter for one adapter: the key set {@link #save} writes and {@link #load} expects. */
    private Map<String, Parameter> savedParameters(String adapterName) {
        Module model = baseModel();
        Map<String, Parameter> out = new LinkedHashMap<>();
        for (Map.Entry<String, AdapterLayer> e : layers().entrySet()) {
            if (e.getValue().adapterNames().contains(adapterName)) {
                e.getValue().savedTensors(adapterName).forEach((k, p) -> out.put(MODEL_PREFIX + join(e.getKey(), k), p));
            }
        }
        method.extraParameters(model, configs.get(adapterName), adapterName).forEach((k, p) -> out.put(MODEL_PREFIX + k, p));
        return out;
    }

    /** Only the active adapter trains (and not in inference mode); every other adapter's tensors are frozen. */
    private void refreshTrainable() {
        for (String a : configs.keySet()) {
            for (Parameter p : parametersOf(a).values()) {
                p.setTrainable(false);
            }
        }
        if (activeAdapter != null && !configs.get(activeAdapter).inferenceMode()) {
            for (Parameter p : parametersOf(activeAdapter).values()) {
                p.setTrainable(true);
            }
        }
    }

    // ---- adapters ---------------------------------------------------------------------------

    /** Adds another adapter of the same method; the active adapter does not change. */
    public void addAdapter(String adapterName, PeftConfig config) {
        checkLive();
        checkAdapterName(adapterName);
        if (anyMerged()) {
            throw new IllegalStateException("unmerge before adding adapter '" + adapterName + "'");
        }
        requireNewName(adapterName);
        addingAdapter(adapterName, () -> injectAdapter(config.copy(), adapterName, false));
        activateLayers(activeAdapter);
        refreshTrainable();
    }

    /** Makes an adapter the one used by forward passes and the one that trains. */
    public void setAdapter(String adapterName) {
        checkLive();
        config(adapterName);
        if (anyMerged()) {
            LOG.warn("adapter cannot be switched while merged; unmerging first");
            unmergeLayers();
        }
        activateLayers(adapterName);
        activeAdapter = adapterName;
        refreshTrainable();
    }

    /** Removes an adapter. Deleting the active adapter activates the first remaining one (or none). */
    public void deleteAdapter(String adapterName) {
        checkLive();
        config(adapterName);
        if (anyMerged()) {
            throw new IllegalStateException("unmerge before deleting adapter '" + adapterName + "'");
        }
        for (AdapterLayer l : layers().values()) {
            l.deleteAdapter(adapterName);
        }
        configs.remove(adapterName);
        if (adapterName.equals(activeAdapter)) {
            activeAdapter = configs.isEmpty() ? null : configs.keySet().iterator().next();
            activateLayers(activeAdapter);
        }
        refreshTrainable();
    }

    /** A scope closed with try-with-resources. */
    public interface Scope extends AutoCloseable {
        @Override
        void close();
    }

    /**
     * Turns every adapter off until the returned scope is closed: outputs inside it are the base
     * model's (modules to save use their originals). A merged adapter is unmerged first.
     */
    public Scope disableAdapter() {
        checkLive();
        if (anyMerged()) {
            LOG.warn("disabling adapters of a merged model: unmerging first");
            unmergeLayers();
        }
        disabledDepth++;
        setLayersEnabled(false);
        return new Scope() {
            private boolean closed;

            @Override
            public void close() {
                if (closed) {
                    return;
                }
                closed = true;
                if (--disabledDepth == 0) {
                    setLayersEnabled(true);
                }
            }
        };
    }

    private void setLayersEnabled(boolean enabled) {
        for (AdapterLayer l : layers().values()) {
            l.setAdaptersEnabled(enabled);
        }
    }

    /**
     * The active adapter's {@link PeftMethod#prepareInputs} (virtual tokens, key/value prefixes)
     * applied to inputs of {@code backbone}, the user's model's backbone; unchanged while adapters
     * are disabled or none is active. Methods that only wrap layers leave the inputs as they are.
     */
    public BackboneInputs prepareInputs(Backbone backbone, BackboneInputs inputs) {
        checkLive();
        if (disabledDepth > 0 || activeAdapter == null) {
            return inputs;
        }
        if (method.preparesInputs() && MixedBatch.current() != null) {
            throw mixedPromptBatch(MixedBatch.current().names());
        }
        return method.prepareInputs(baseModel(), configs.get(activeAdapter), activeAdapter, backbone, inputs);
    }

    /** {@link #prepareInputs}, as the {@link InputPreparation} a {@link HeadModel} runs. */
    @Override
    public BackboneInputs prepare(Backbone backbone, BackboneInputs inputs) {
        return prepareInputs(backbone, inputs);
    }

    @Override
    public long virtualTokensInCache(long cachedTokens) {
        if (unloaded || disabledDepth > 0 || activeAdapter == null) {
            return 0;
        }
        return method.virtualTokensInCache(configs.get(activeAdapter), cachedTokens);
    }

    /**
     * Routes each batch row through its own adapter for the forward passes run inside the scope
     * (PEFT's {@code adapter_names}); {@link MixedBatch#BASE} routes a row around every adapter.
     */
    public MixedBatch mixedBatch(List<String> adapterNamesPerRow) {
        checkLive();
        if (method.preparesInputs()) {
            throw mixedPromptBatch(adapterNamesPerRow);
        }
        if (anyMerged()) {
            throw new IllegalStateException("mixed batches need unmerged adapters; call unmerge() first");
        }
        for (String n : adapterNamesPerRow) {
            if (!MixedBatch.BASE.equals(n) && !configs.containsKey(n)) {
                throw new IllegalArgumentException("unknown adapter '" + n + "' in mixed batch (adapters: " + configs.keySet()
                        + ", or " + MixedBatch.BASE + ")");
            }
        }
        return MixedBatch.open(adapterNamesPerRow);
    }

    /**
     * A batch whose rows name their adapters cannot run a method that changes the inputs: the
     * virtual tokens or key/value prefix are one adapter's for the whole batch (PEFT refuses
     * {@code adapter_names} with prompt learning too).
     */
    private IllegalArgumentException mixedPromptBatch(List<String> names) {
        return new IllegalArgumentException("mixed-adapter batches (adapter names per row " + names + ") are not supported"
                + " with " + method.peftType() + ": its virtual tokens / key-value prefix belong to one adapter for the whole"
                + " batch, as in PEFT (adapter_names is refused for prompt learning); run one batch per adapter with"
                + " setAdapter(name)");
    }

    /**
     * Adds adapter {@code newName} combining existing ones (PEFT's {@code add_weighted_adapter});
     * {@code combinationType} is method-specific (LoRA: {@code linear}, {@code cat}, {@code svd}).
     */
    public void addWeightedAdapter(List<String> adapters, List<Double> weights, String newName, String combinationType) {
        addWeightedAdapter(adapters, weights, newName, combinationType, null);
    }

    public void addWeightedAdapter(List<String> adapters, List<Double> weights, String newName, String combinationType,
                                   Integer svdRank) {
        checkLive();
        checkAdapterName(newName);
        if (configs.containsKey(newName)) {
            throw new IllegalArgumentException("adapter '" + newName + "' already exists");
        }
        if (adapters == null || adapters.isEmpty() || weights == null || adapters.size() != weights.size()) {
            throw new IllegalArgumentException("need one weight per adapter, got adapters " + adapters + " and weights " + weights);
        }
        for (String a : adapters) {
            config(a);
        }
        PeftConfig c = method.addWeightedAdapter(baseModel(), Collections.unmodifiableMap(configs), adapters, weights, newName,
                combinationType, svdRank);
        configs.put(newName, c);
        activateLayers(activeAdapter);
        refreshTrainable();
    }

    // ---- merging ------------------------------------------------------------------------------

    /** Folds the active adapter into the base weights (outputs unchanged, faster forward). */
    public void merge() {
        checkLive();
        requireMerge();
        for (AdapterLayer l : layers().values()) {
            l.merge(List.of(activeAdapter));
        }
    }

    /** Restores the base weights saved before {@link #merge()}. */
    public void unmerge() {
        checkLive();
        requireMerge();
        unmergeLayers();
    }

    public boolean isMerged() {
        return !unloaded && anyMerged();
    }

    private void requireMerge() {
        if (!method.supportsMerge()) {
            throw new UnsupportedOperationException(method.peftType() + " adapters cannot be merged");
        }
    }

    /**
     * Merges the active adapter into the weights and returns the plain model: adapter layers are
     * replaced by the layers they wrapped and each modules-to-save wrapper by the active copy.
     * This PeftModel is unusable afterwards. Parameters keep their trainable flags (frozen base).
     */
    public Module mergeAndUnload() {
        checkLive();
        requireMerge();
        return unloadInternal(true);
    }

    /** Removes every adapter without merging and returns the plain model (original outputs). */
    public Module unload() {
        checkLive();
        return unloadInternal(false);
    }

    private Module unloadInternal(boolean merge) {
        removeInputPreparation();
        Module root = baseModel();
        // pre-order: an outer layer is replaced before anything inside it would be visited
        for (Map.Entry<String, AdapterLayer> e : layers(root).entrySet()) {
            Module keep = e.getValue().unwrap(merge);
            if (e.getKey().isEmpty()) {
                root = keep;
            } else {
                baseModel().replace(e.getKey(), keep);
            }
        }
        unloaded = true;
        configs.clear();
        activeAdapter = null;
        return root;
    }

    // ---- parameters ----------------------------------------------------------------------------

    /** The trainable parameters under their PeftModel names: what an optimizer should see. */
    public Map<String, Parameter> trainableParameters() {
        return namedTrainableParameters();
    }

    /**
     * Logs and returns {@code trainable params: N || all params: M || trainable%: p}, formatted as
     * PEFT prints it (thousands separators, 4 decimals).
     */
    public String printTrainableParameters() {
        long trainable = numTrainableParameters();
        long all = numParameters();
        double pct = all == 0 ? 0.0 : 100.0 * trainable / all;
        String s = String.format(Locale.ROOT, "trainable params: %,d || all params: %,d || trainable%%: %.4f", trainable, all, pct);
        LOG.info(s);
        return s;
    }

    // ---- saving and loading ------------------------------------------------------------------

    /**
     * Writes every adapter in PEFT's layout: the adapter named {@code default} into {@code dir},
     * any other into {@code dir/<name>/}. The folder is staged next to {@code dir} and then swapped
     * in as a whole, so a failure leaves the previous folder as it was; the folder's previous
     * contents are replaced entirely.
     */
    public void save(Path dir) {
        checkLive();
        if (configs.isEmpty()) {
            throw new IllegalStateException("no adapter to save");
        }
        Path target = dir.toAbsolutePath().normalize();
        try {
            AtomicFiles.replaceDirectory(target, staging -> {
                Map<Path, String> used = new LinkedHashMap<>();
                for (String name : configs.keySet()) {
                    PeftConfig config = configs.get(name);
                    AdapterLayout layout = AdapterLayouts.forConfig(config);
                    Path sub = layout.folder(staging, name, config, activeAdapter);
                    String other = used.put(sub, name);
                    if (other != null) {
                        throw new IllegalStateException("adapters '" + other + "' and '" + name + "' would both be saved to "
                                + target.resolve(staging.relativize(sub)) + "; rename one");
                    }
                    Files.createDirectories(sub);
                    layout.write(sub, name, config, new TreeMap<>(adapterStateDict(name)), baseModel());
                    method.writeExtraFiles(baseModel(), config, name, sub);
                }
                Consumer<Path> hook = beforeCommitHook;
                if (hook != null) {
                    hook.accept(staging);
                }
            });
        } catch (IOException e) {
            throw new PeftException("could not save adapters to " + target + " (previous contents left unchanged): "
                    + e.getMessage(), e);
        }
        LOG.info("saved adapters {} to {}", configs.keySet(), target);
    }

    /** One adapter's tensors exactly as {@link #save} writes them (PEFT keys, adapter name removed). */
    public Map<String, INDArray> adapterStateDict(String adapterName) {
        checkLive();
        config(adapterName);
        Map<String, INDArray> out = new LinkedHashMap<>();
        savedParameters(adapterName).forEach((k, p) -> out.put(k, p.value()));
        return method.stateToSave(baseModel(), configs.get(adapterName), adapterName, out);
    }

    /** Loads the adapter in {@code dir} as {@code "default"}, frozen (inference), as PEFT's {@code from_pretrained}. */
    public static PeftModel load(Module baseModel, Path dir) {
        return load(baseModel, dir, DEFAULT_ADAPTER, false);
    }

    public static PeftModel load(Module baseModel, Path dir, String adapterName) {
        return load(baseModel, dir, adapterName, false);
    }

    /**
     * Loads the adapter stored in {@code dir} (its {@code adapter_config.json} and
     * {@code adapter_model.safetensors}) into {@code baseModel} as {@code adapterName}; with
     * {@code trainable} the adapter can be trained further, otherwise it is frozen.
     */
    public static PeftModel load(Module baseModel, Path dir, String adapterName, boolean trainable) {
        return load(baseModel, dir, adapterName, trainable, true);
    }

    /**
     * {@link #load(Module, Path, String, boolean)}; without {@code heads} the modules a folder
     * trains in full ({@code modules_to_save}, e.g. its classifier) are not loaded (the adapters an
     * AdapterFusion is built on: the fusion trains its own head).
     */
    static PeftModel load(Module baseModel, Path dir, String adapterName, boolean trainable, boolean heads) {
        checkAdapterName(adapterName);
        try {
            AtomicFiles.recover(dir); // a save killed between its two renames left the previous folder aside
        } catch (IOException e) {
            throw new PeftException("cannot recover the interrupted save of " + dir + ": " + e.getMessage(), e);
        }
        AdapterLayout layout = AdapterLayouts.forFolder(dir);
        List<AdapterLayout.StoredAdapter> stored = stored(layout, dir, adapterName, trainable, heads);
        AdapterLayout.StoredAdapter first = stored.get(0);
        TreeState before = TreeState.of(baseModel);
        PeftModel pm = new PeftModel(baseModel, first.config(), first.name(), true);
        try {
            for (int i = 0; i < stored.size(); i++) {
                AdapterLayout.StoredAdapter a = stored.get(i);
                if (i > 0) {
                    pm.requireNewName(a.name());
                    pm.injectAdapter(a.config(), a.name(), true);
                }
                pm.loadStored(layout, a, trainable);
            }
        } catch (RuntimeException e) {
            pm.removeInputPreparation();
            pm.unloaded = true;
            pm.configs.clear();
            before.restore(baseModel);   // a bad folder leaves the base model as it was
            throw e;
        }
        String last = stored.get(stored.size() - 1).name();
        pm.activeAdapter = last;
        pm.activateLayers(last);
        pm.refreshTrainable();
        return pm;
    }

    /** The folder's adapters; only the one the folder is about (the last) may train. */
    private static List<AdapterLayout.StoredAdapter> stored(AdapterLayout layout, Path dir, String adapterName, boolean trainable,
                                                          boolean heads) {
        List<AdapterLayout.StoredAdapter> stored = layout.list(dir, adapterName);
        for (int i = 0; i < stored.size(); i++) {
            checkAdapterName(stored.get(i).name());
            PeftConfig c = stored.get(i).config();
            c.setInferenceMode(!trainable || i < stored.size() - 1);
            if (!heads) {
                c.setModulesToSave(null);
            }
        }
        return stored;
    }

    /** Loads another adapter folder into this model (not activated), frozen unless {@code trainable}. */
    public void loadAdapter(Path dir, String adapterName, boolean trainable) {
        loadAdapter(dir, adapterName, trainable, true);
    }

    /** {@link #loadAdapter(Path, String, boolean)}, without the folder's fully trained modules unless {@code heads}. */
    void loadAdapter(Path dir, String adapterName, boolean trainable, boolean heads) {
        checkLive();
        checkAdapterName(adapterName);
        AdapterLayout layout = AdapterLayouts.forFolder(dir);
        List<AdapterLayout.StoredAdapter> stored = stored(layout, dir, adapterName, trainable, heads);
        for (AdapterLayout.StoredAdapter a : stored) {
            requireNewName(a.name());
        }
        for (AdapterLayout.StoredAdapter a : stored) {
            addingAdapter(a.name(), () -> {
                injectAdapter(a.config(), a.name(), true);
                loadStored(layout, a, trainable);
            });
        }
        activateLayers(activeAdapter);
        refreshTrainable();
    }

    public void loadAdapter(Path dir, String adapterName) {
        loadAdapter(dir, adapterName, false);
    }

    private void loadStored(AdapterLayout layout, AdapterLayout.StoredAdapter a, boolean trainable) {
        Map<String, INDArray> tensors = layout.read(a, savedParameters(a.name()).keySet());
        loadAdapterState(a.name(), tensors, layout.source(a));
        method.readExtraFiles(baseModel(), a.config(), a.name(), a.folder(), trainable);
    }

    /**
     * Loads one adapter's tensors (keys as {@link #save} writes them, or any form the method's
     * {@link PeftMethod#normalizeKey} and the layers' {@link AdapterLayer#savedKeyAliases} accept)
     * with {@link StateDictLoader}: every missing, unexpected or mis-shaped key is an error naming
     * it, both shapes and {@code source}; nothing changes unless all fit.
     */
    public void loadAdapterState(String adapterName, Map<String, INDArray> tensors, String source) {
        checkLive();
        config(adapterName);
        tensors = method.stateToLoad(baseModel(), configs.get(adapterName), adapterName, tensors);
        Map<String, Parameter> expected = savedParameters(adapterName);
        Map<String, String> aliases = new LinkedHashMap<>();
        Map<String, AdapterLayer> layers = layers();
        for (Map.Entry<String, AdapterLayer> e : layers.entrySet()) {
            if (e.getValue().adapterNames().contains(adapterName)) {
                e.getValue().savedKeyAliases(adapterName).forEach((alias, k) ->
                        aliases.put(MODEL_PREFIX + join(e.getKey(), alias), MODEL_PREFIX + join(e.getKey(), k)));
            }
        }
        Module model = baseModel();
        List<String> paths = new ArrayList<>(layers.keySet());
        String hint = "the adapter targets modules that do not exist in this base model (its adapter layers are "
                + (paths.size() > 5 ? paths.subList(0, 5) + " and " + (paths.size() - 5) + " more" : paths) + ")";
        StateDictLoader.into(expected, "adapter '" + adapterName + "' (" + method.peftType() + ") of " + model.getClass().getSimpleName())
                .keys(key -> {
                    String k = method.normalizeKey(key);
                    return !expected.containsKey(k) && aliases.containsKey(k) ? aliases.get(k) : k;
                })
                .reshapable(method::acceptsReshaped)
                .unexpectedHint(hint)
                .load(tensors, source, true);
    }
}
