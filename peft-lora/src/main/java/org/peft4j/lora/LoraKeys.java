package org.peft4j.lora;

import org.peft4j.core.nn.LinearLayer;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.ModulesToSaveWrapper;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * LoRA's part of the adapter state dict (the layers name their own tensors, see
 * {@link LoraLayer#savedTensors}): stored keys with an adapter name inside or in older forms, and
 * the biases that train with the adapter ({@code bias = "all"} / {@code "lora_only"}).
 */
final class LoraKeys {
    private static final Pattern AB_WITH_NAME = Pattern.compile("(.*)\\.(lora_A|lora_B)\\.([^.]+)\\.weight");
    private static final Pattern MAG_WITH_NAME = Pattern.compile("(.*)\\.lora_magnitude_vector\\.([^.]+)(\\.weight)?");
    private static final Pattern EMB_WITH_NAME = Pattern.compile("(.*)\\.(lora_embedding_A|lora_embedding_B)\\.([^.]+)");

    private LoraKeys() {
    }

    /** A stored key with any adapter name inside (PEFT's in-memory form, older files) reduced to the saved form. */
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

    /** DoRA's magnitude vector {@code [out]} may be stored with another shape of the same size. */
    static boolean acceptsReshaped(String key) {
        return key.endsWith("." + LoraLinear.MAGNITUDE);
    }

    /**
     * The biases that train with an adapter, under their paths in {@code model}: {@code all}, every
     * bias outside modules-to-save wrappers (PEFT's "bias" in name, by last segment);
     * {@code lora_only}, the biases of this adapter's LoRA layers ({@code <path>.base_layer.bias}).
     */
    static Map<String, Parameter> biases(Module model, LoraConfig c, String adapterName) {
        Map<String, Parameter> out = new LinkedHashMap<>();
        if (c.bias().equals("all")) {
            out.putAll(allBiases(model));
        } else if (c.bias().equals("lora_only")) {
            for (Map.Entry<String, Module> e : model.namedModules().entrySet()) {
                if (e.getValue() instanceof LoraLayer l && l.adapterNames().contains(adapterName)
                        && l.baseLayer() instanceof LinearLayer base && base.bias() != null) {
                    out.put(join(e.getKey(), LoraLayer.BASE + ".bias"), base.bias());
                }
            }
        }
        return out;
    }

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

    private static String join(String path, String suffix) {
        return path.isEmpty() ? suffix : path + "." + suffix;
    }
}
