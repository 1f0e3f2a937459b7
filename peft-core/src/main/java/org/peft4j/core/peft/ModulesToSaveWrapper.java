package org.peft4j.core.peft;

import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * PEFT's {@code ModulesToSaveWrapper}, one more {@link AdapterLayer}: keeps the original module
 * frozen as {@code original_module} and one trainable {@link Module#deepCopy() deep copy} per
 * adapter under {@code modules_to_save.<adapter>}; the forward pass uses the active adapter's copy
 * (or the original when adapters are disabled or the active adapter has no copy here).
 *
 * <p>The copy's tensors are saved under the module's own path
 * ({@code base_model.model.classifier.weight}), as current PEFT does; the older forms
 * {@code classifier.modules_to_save.weight} and {@code classifier.modules_to_save.<adapter>.weight}
 * are read too. Nothing merges: unloading with merge keeps the active copy.
 */
public final class ModulesToSaveWrapper extends BaseAdapterLayer implements UnaryModule {
    public static final String ORIGINAL = "original_module";
    public static final String COPIES = "modules_to_save";

    public ModulesToSaveWrapper(Module original, String path) {
        super(ORIGINAL, requireUnary(original, path));
        registerModule(COPIES, new ModuleDict());
    }

    private static Module requireUnary(Module original, String path) {
        if (!(original instanceof UnaryModule)) {
            throw new IllegalArgumentException("modules_to_save target '" + path + "' is a " + original.getClass().getSimpleName()
                    + ", which has no single-input forward (UnaryModule); only such modules can be wrapped");
        }
        return original;
    }

    /**
     * PEFT's {@code _set_trainable}: every module of {@code model} whose name ends with one of
     * {@code names} is wrapped (or, already wrapped, gets another copy) for {@code adapter}.
     * Returns the wrapped paths.
     *
     * @throws IllegalArgumentException when no name matches, or a match already is another adapter layer
     */
    public static List<String> inject(Module model, List<String> names, String adapter) {
        Set<String> found = new LinkedHashSet<>();
        List<String> paths = new java.util.ArrayList<>();
        for (String key : TargetMatcher.candidateNames(model)) {
            boolean hit = false;
            for (String n : names) {
                if (key.endsWith(n)) {
                    hit = true;
                    found.add(n);
                }
            }
            if (!hit) {
                continue;
            }
            Module target = model.get(key);
            if (target instanceof ModulesToSaveWrapper w) {
                w.addAdapter(adapter);
            } else if (target instanceof AdapterLayer) {
                throw new IllegalArgumentException("modules_to_save entry matches '" + key + "', which already carries an adapter layer");
            } else {
                ModulesToSaveWrapper w = new ModulesToSaveWrapper(target, key);
                model.replace(key, w);
                w.addAdapter(adapter);
            }
            paths.add(key);
        }
        if (found.isEmpty()) {
            throw new IllegalArgumentException("modules_to_save " + names + " matched no module of " + model.getClass().getSimpleName()
                    + "; module names that exist include " + TargetMatcher.someNames(model));
        }
        return paths;
    }

    public Module originalModule() {
        return baseLayer();
    }

    private ModuleDict copies() {
        return child(COPIES, ModuleDict.class);
    }

    /** The copy belonging to an adapter. */
    public Module copyFor(String adapter) {
        return copies().get(adapter, true);
    }

    /** Adds a fresh deep copy of the original for {@code adapter}. */
    public void addAdapter(String adapter) {
        if (hasAdapter(adapter)) {
            throw new IllegalArgumentException("modules_to_save already has a copy for adapter '" + adapter + "'");
        }
        Module original = originalModule();
        Module copy;
        try {
            copy = original.deepCopy();
        } catch (UnsupportedOperationException e) {
            throw new IllegalArgumentException("cannot copy a " + original.getClass().getName() + " for modules_to_save: "
                    + e.getMessage(), e);
        }
        if (copy == original) {
            throw new IllegalStateException(original.getClass().getName() + ".deepCopy() returned the module itself");
        }
        for (Parameter p : copy.parameters()) {
            p.setTrainable(true);
        }
        copies().put(adapter, copy);
        registerAdapter(adapter);
    }

    @Override
    protected void removeAdapterState(String adapter) {
        replace(COPIES, copies().without(adapter));
    }

    /** The module the next (non-mixed) forward pass uses. */
    public Module activeModule() {
        if (adaptersEnabled()) {
            for (String a : activeAdapters()) {
                if (hasAdapter(a)) {
                    return copyFor(a);
                }
            }
        }
        return originalModule();
    }

    /** A copy is used as it is: there is nothing to fold into the original. */
    @Override
    public void merge(List<String> adapters) {
    }

    /** With {@code merge} the active copy replaces the wrapper (it is the trained module); otherwise the original. */
    @Override
    public Module unwrap(boolean merge) {
        if (merge) {
            for (String a : activeAdapters()) {
                if (hasAdapter(a)) {
                    return copyFor(a);
                }
            }
        }
        return originalModule();
    }

    /** The copy's parameters under {@code modules_to_save.<adapter>.weight}, .... */
    @Override
    public Map<String, Parameter> adapterParameters(String adapter) {
        Map<String, Parameter> out = new LinkedHashMap<>();
        if (hasAdapter(adapter)) {
            copyFor(adapter).namedParameters().forEach((k, p) -> out.put(COPIES + "." + adapter + "." + k, p));
        }
        return out;
    }

    /** The copy's parameters under names relative to the copy ({@code weight}, {@code bias}). */
    @Override
    public Map<String, Parameter> savedTensors(String adapter) {
        return hasAdapter(adapter) ? copyFor(adapter).namedParameters() : Map.of();
    }

    @Override
    public Map<String, String> savedKeyAliases(String adapter) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String k : savedTensors(adapter).keySet()) {
            out.put(COPIES + "." + k, k);
            out.put(COPIES + "." + adapter + "." + k, k);
        }
        return out;
    }

    @Override
    public Tensor forward(Tensor x) {
        return replacedForward(x, a -> (UnaryModule) copyFor(a));
    }

    @Override
    protected String describe() {
        return "ModulesToSaveWrapper(" + describeAdapters() + ", enabled=" + adaptersEnabled() + ")";
    }
}
