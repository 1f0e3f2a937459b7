package org.peft4j.core.peft;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * PEFT's {@code ModulesToSaveWrapper}: keeps the original module frozen as
 * {@code original_module} and one trainable deep copy per adapter under
 * {@code modules_to_save.<adapter>}; the forward pass uses the active adapter's copy (or the
 * original when adapters are disabled or the active adapter has no copy here).
 *
 * <p>The copy's tensors are saved under the module's own path
 * ({@code base_model.model.classifier.weight}), as current PEFT does.
 */
public final class ModulesToSaveWrapper extends Module implements UnaryModule {
    public static final String ORIGINAL = "original_module";
    public static final String COPIES = "modules_to_save";

    private String activeAdapter;
    private boolean enabled = true;

    public ModulesToSaveWrapper(Module original, String path) {
        if (!(original instanceof UnaryModule)) {
            throw new IllegalArgumentException("modules_to_save target '" + path + "' is a " + original.getClass().getSimpleName()
                    + ", which has no single-input forward (UnaryModule); only such modules can be wrapped");
        }
        registerModule(ORIGINAL, original);
        registerModule(COPIES, new ModuleDict());
    }

    public Module originalModule() {
        return child(ORIGINAL);
    }

    private ModuleDict copies() {
        return child(COPIES, ModuleDict.class);
    }

    /** The adapters that own a copy here. */
    public Set<String> adapterNames() {
        return copies().children().keySet();
    }

    public boolean hasAdapter(String name) {
        return copies().containsKey(name);
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
        Module copy = ModuleCopies.deepCopy(originalModule());
        if (!isTraining()) {
            copy.eval();
        }
        copies().put(adapter, copy);
        if (activeAdapter == null) {
            activeAdapter = adapter;
        }
    }

    public void deleteAdapter(String adapter) {
        if (!hasAdapter(adapter)) {
            return;
        }
        replace(COPIES, copies().without(adapter));
        if (adapter.equals(activeAdapter)) {
            activeAdapter = null;
        }
    }

    public void setActiveAdapter(String adapter) {
        this.activeAdapter = adapter;
    }

    public String activeAdapter() {
        return activeAdapter;
    }

    public void setEnabled(boolean enabled) {
        this.enabled = enabled;
    }

    /** The module the next forward pass uses. */
    public Module activeModule() {
        if (enabled && activeAdapter != null && hasAdapter(activeAdapter)) {
            return copyFor(activeAdapter);
        }
        return originalModule();
    }

    /** The copy's parameters under names relative to the copy ({@code weight}, {@code bias}). */
    public Map<String, Parameter> adapterParameters(String adapter) {
        return hasAdapter(adapter) ? copyFor(adapter).namedParameters() : Map.of();
    }

    @Override
    public Tensor forward(Tensor x) {
        MixedBatch mb = MixedBatch.current();
        if (mb == null || !enabled) {
            return ((UnaryModule) activeModule()).forward(x);
        }
        // Mixed batch (inference): each row group goes through its adapter's copy or the original.
        Map<String, int[]> groups = mb.groups(x.size(0));
        INDArray out = null;
        for (Map.Entry<String, int[]> g : groups.entrySet()) {
            Module m = hasAdapter(g.getKey()) ? copyFor(g.getKey()) : originalModule();
            INDArray y = ((UnaryModule) m).forward(Tensor.constant(MixedBatch.selectRows(x.value(), g.getValue()))).value();
            if (out == null) {
                long[] shape = y.shape().clone();
                shape[0] = x.size(0);
                out = org.nd4j.linalg.factory.Nd4j.createUninitialized(y.dataType(), shape, 'c');
            }
            MixedBatch.putRows(out, g.getValue(), y);
        }
        return Tensor.constant(out);
    }

    @Override
    protected String describe() {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("active", activeAdapter);
        d.put("enabled", enabled);
        return "ModulesToSaveWrapper" + d;
    }
}
