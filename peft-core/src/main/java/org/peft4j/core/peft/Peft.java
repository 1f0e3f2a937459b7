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

    public static PeftModel apply(Module model, PeftConfig config, String adapterName) {
        return new PeftModel(model, config, adapterName, false);
    }

    /** The {@code peft_type} values of the installed methods. */
    public static List<String> installedTypes() {
        return PeftMethods.installedTypes();
    }
}
