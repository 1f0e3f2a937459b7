package org.peft4j.core.peft;

import org.peft4j.core.nn.Module;

import java.util.List;

/**
 * Entry point: {@code PeftModel pm = Peft.apply(model, LoraConfig.builder()...build());}
 *
 * <p>{@link #apply} freezes every parameter of the model, lets the config's method rewrite the tree
 * in place (e.g. wrap target linear layers) and returns a {@link PeftModel} whose trainable
 * parameters are exactly the adapter's.
 */
public final class Peft {
    private Peft() {
    }

    /** Adds adapter {@code "default"}. */
    public static PeftModel apply(Module model, PeftConfig config) {
        return apply(model, config, PeftModel.DEFAULT_ADAPTER);
    }

    /**
     * Adds adapter {@code adapterName}. When the method needs other adapters first
     * ({@link PeftMethod#foldersToLoadFirst}: the adapters an AdapterFusion fuses) they are loaded,
     * frozen and without their heads, under their names, and the new adapter is added over them and
     * made active.
     */
    public static PeftModel apply(Module model, PeftConfig config, String adapterName) {
        java.util.Map<String, java.nio.file.Path> first = PeftMethods.forConfig(config).foldersToLoadFirst(config);
        if (first.isEmpty()) {
            return new PeftModel(model, config, adapterName, false);
        }
        PeftModel pm = null;
        for (java.util.Map.Entry<String, java.nio.file.Path> e : first.entrySet()) {
            if (pm == null) {
                pm = PeftModel.load(model, e.getValue(), e.getKey(), false, false);
            } else {
                pm.loadAdapter(e.getValue(), e.getKey(), false, false);
            }
        }
        pm.addAdapter(adapterName, config);
        pm.setAdapter(adapterName);
        return pm;
    }

    /** The {@code peft_type} values of the installed methods. */
    public static List<String> installedTypes() {
        return PeftMethods.installedTypes();
    }
}
