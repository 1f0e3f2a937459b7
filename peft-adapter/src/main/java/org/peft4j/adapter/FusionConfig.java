package org.peft4j.adapter;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * AdapterHub's {@code AdapterFusionConfig} ({@code adapters} v1.2,
 * {@code configuration/adapter_fusion_config.py}): the architecture of an AdapterFusion layer, the
 * {@code config} block of {@code adapter_fusion_config.json}. Presets {@link #staticFusion()}
 * ({@code "static"}: query and key projections, no value matrix) and {@link #dynamicFusion()}
 * ({@code "dynamic"}: with the value matrix initialised near identity, and regularization).
 *
 * <p>peft4j implements every key except {@code regularization} (a loss term AdapterHub's trainer
 * adds towards the identity value matrix): a config that asks for it is refused, naming the key.
 */
public final class FusionConfig {
    private static final Set<String> KEYS = Set.of("key", "query", "value", "query_before_ln", "regularization",
            "residual_before", "temperature", "value_before_softmax", "value_initialized", "dropout_prob");
    private final TreeMap<String, Object> values = new TreeMap<>();

    private FusionConfig() {
    }

    /** {@code StaticAdapterFusionConfig}: key and query on, value off, no regularization, T = 1. */
    public static FusionConfig staticFusion() {
        FusionConfig c = new FusionConfig();
        c.values.put("key", true);
        c.values.put("query", true);
        c.values.put("value", false);
        c.values.put("query_before_ln", false);
        c.values.put("regularization", false);
        c.values.put("residual_before", false);
        c.values.put("temperature", false);
        c.values.put("value_before_softmax", true);
        c.values.put("value_initialized", false);
        c.values.put("dropout_prob", null);
        return c;
    }

    /** {@code DynamicAdapterFusionConfig}: as static with the value matrix (identity init) and regularization. */
    public static FusionConfig dynamicFusion() {
        FusionConfig c = staticFusion();
        c.values.put("value", true);
        c.values.put("regularization", true);
        c.values.put("value_initialized", true);
        return c;
    }

    /** A preset by AdapterHub's name ({@code static}, {@code dynamic}). */
    public static FusionConfig preset(String name) {
        return switch (name) {
            case "static" -> staticFusion();
            case "dynamic" -> dynamicFusion();
            default -> throw new IllegalArgumentException("unknown AdapterFusion config '" + name + "' (static, dynamic)");
        };
    }

    /** From a {@code config} block (every key optional over the static defaults); {@code source} names it in errors. */
    public static FusionConfig fromMap(Map<String, Object> block, String source) {
        FusionConfig c = staticFusion();
        for (Map.Entry<String, Object> e : block.entrySet()) {
            if (!KEYS.contains(e.getKey())) {
                throw new IllegalArgumentException(source + ": unknown AdapterFusion config key 'config." + e.getKey()
                        + "' (keys: " + new TreeMap<>(c.values).keySet() + ")");
            }
            c.values.put(e.getKey(), e.getValue());
        }
        try {
            c.validate();
        } catch (IllegalArgumentException ex) {
            throw new IllegalArgumentException(source + ": " + ex.getMessage(), ex);
        }
        return c;
    }

    public FusionConfig set(String key, Object value) {
        if (!KEYS.contains(key)) {
            throw new IllegalArgumentException("unknown AdapterFusion config key '" + key + "'");
        }
        values.put(key, value);
        return this;
    }

    /** Throws naming the key when a value is of the wrong kind or asks for what peft4j does not implement. */
    public void validate() {
        for (String k : new String[]{"key", "query", "value", "query_before_ln", "regularization", "residual_before",
                "temperature", "value_before_softmax"}) {
            if (!(values.get(k) instanceof Boolean)) {
                throw new IllegalArgumentException("config." + k + " must be a boolean, got " + values.get(k));
            }
        }
        if (bool("regularization")) {
            throw new IllegalArgumentException("config.regularization = true is not supported by peft4j (AdapterHub adds its"
                    + " loss in its own trainer); use the static fusion config or set regularization false");
        }
        Object p = values.get("dropout_prob");
        if (p != null && (!(p instanceof Number n) || n.doubleValue() < 0 || n.doubleValue() >= 1)) {
            throw new IllegalArgumentException("config.dropout_prob must be null or in [0, 1), got " + p);
        }
        Object vi = values.get("value_initialized");
        if (!(vi instanceof Boolean) && !(vi instanceof String)) {
            throw new IllegalArgumentException("config.value_initialized must be a boolean or a string, got " + vi);
        }
    }

    boolean bool(String key) {
        return (Boolean) values.get(key);
    }

    public boolean key() {
        return bool("key");
    }

    public boolean query() {
        return bool("query");
    }

    public boolean value() {
        return bool("value");
    }

    public boolean queryBeforeLn() {
        return bool("query_before_ln");
    }

    public boolean residualBefore() {
        return bool("residual_before");
    }

    public boolean temperature() {
        return bool("temperature");
    }

    public boolean valueBeforeSoftmax() {
        return bool("value_before_softmax");
    }

    /** Python truthiness of {@code value_initialized} (AdapterHub tests {@code if config["value_initialized"]}). */
    public boolean valueInitialized() {
        Object v = values.get("value_initialized");
        return v instanceof Boolean b ? b : !((String) v).isEmpty();
    }

    /** {@code dropout_prob}, or null for the model's attention-probability dropout. */
    public Double dropoutProb() {
        Object p = values.get("dropout_prob");
        return p == null ? null : ((Number) p).doubleValue();
    }

    /** The {@code config} block as written (sorted keys). */
    public Map<String, Object> toMap() {
        return new TreeMap<>(new LinkedHashMap<>(values));
    }

    @Override
    public String toString() {
        return "FusionConfig" + values;
    }
}
