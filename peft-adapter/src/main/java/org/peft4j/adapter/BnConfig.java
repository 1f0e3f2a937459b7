package org.peft4j.adapter;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * AdapterHub's {@code BnConfig} ({@code adapters} v1.2, {@code configuration/adapter_config.py}):
 * a bottleneck adapter's architecture, with the library's keys and defaults, read from and written
 * to the {@code config} block of {@code adapter_config.json}. Presets: {@link #seqBn()}
 * ({@code seq_bn} / {@code pfeiffer}), {@link #doubleSeqBn()} ({@code double_seq_bn} /
 * {@code houlsby}), {@link #parBn()} ({@code par_bn}); {@link #preset} by name.
 *
 * <p>Keys of features peft4j does not implement (gating, PHM/Compacter layers, invertible and
 * cross adapters, stochastic depth) are accepted only with their inert default.
 */
public final class BnConfig {
    /** The keys AdapterHub writes for a bottleneck config, with BnConfig's defaults. */
    private static final Map<String, Object> BASE = baseDefaults();
    /** Keys peft4j implements; the others must keep their default. */
    private static final Set<String> IMPLEMENTED = Set.of("architecture", "mh_adapter", "output_adapter", "reduction_factor",
            "non_linearity", "original_ln_before", "original_ln_after", "ln_before", "ln_after", "init_weights",
            "init_weights_seed", "is_parallel", "scaling", "residual_before_ln", "adapter_residual_before_ln", "leave_out",
            "dropout");

    private final TreeMap<String, Object> values;

    private BnConfig(Map<String, Object> values) {
        this.values = new TreeMap<>(values);
    }

    private static Map<String, Object> baseDefaults() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("architecture", "bottleneck");
        m.put("mh_adapter", false);
        m.put("output_adapter", true);
        m.put("reduction_factor", 16);
        m.put("non_linearity", "relu");
        m.put("original_ln_before", false);
        m.put("original_ln_after", true);
        m.put("ln_before", false);
        m.put("ln_after", false);
        m.put("init_weights", "bert");
        m.put("init_weights_seed", null);
        m.put("is_parallel", false);
        m.put("scaling", 1.0);
        m.put("use_gating", false);
        m.put("residual_before_ln", true);
        m.put("adapter_residual_before_ln", false);
        m.put("inv_adapter", null);
        m.put("inv_adapter_reduction_factor", null);
        m.put("cross_adapter", false);
        m.put("leave_out", List.of());
        m.put("dropout", 0.0);
        m.put("phm_layer", false);
        m.put("phm_dim", 4);
        m.put("factorized_phm_W", true);
        m.put("shared_W_phm", false);
        m.put("shared_phm_rule", true);
        m.put("factorized_phm_rule", false);
        m.put("phm_c_init", "normal");
        m.put("phm_init_range", 0.0001);
        m.put("learn_phm", true);
        m.put("hypercomplex_nonlinearity", "glorot-uniform");
        m.put("phm_rank", 1);
        m.put("phm_bias", true);
        m.put("stochastic_depth", 0.0);
        return m;
    }

    /** Pfeiffer: one adapter after the feed-forward block, original LayerNorm before, factor 16, ReLU. */
    public static BnConfig seqBn() {
        return new BnConfig(BASE).set("original_ln_before", true).set("original_ln_after", true)
                .set("residual_before_ln", true).set("mh_adapter", false).set("output_adapter", true)
                .set("non_linearity", "relu").set("reduction_factor", 16);
    }

    /** Houlsby: adapters after attention and after the feed-forward block, factor 16, swish. */
    public static BnConfig doubleSeqBn() {
        return new BnConfig(BASE).set("original_ln_before", false).set("original_ln_after", true)
                .set("residual_before_ln", true).set("mh_adapter", true).set("output_adapter", true)
                .set("non_linearity", "swish").set("reduction_factor", 16);
    }

    /** He et al.: parallel to the feed-forward block, factor 2, scaling 4.0, "mam_adapter" init. */
    public static BnConfig parBn() {
        return new BnConfig(BASE).set("mh_adapter", false).set("output_adapter", true).set("non_linearity", "relu")
                .set("reduction_factor", 2).set("init_weights", "mam_adapter").set("is_parallel", true).set("scaling", 4.0);
    }

    /** The general form: BnConfig's defaults with the required keys given. */
    public static BnConfig general(boolean mhAdapter, boolean outputAdapter, double reductionFactor, String nonLinearity) {
        return new BnConfig(BASE).set("mh_adapter", mhAdapter).set("output_adapter", outputAdapter)
                .set("reduction_factor", reductionFactor).set("non_linearity", nonLinearity);
    }

    /** A preset by AdapterHub's name: seq_bn, pfeiffer, double_seq_bn, houlsby, par_bn. */
    public static BnConfig preset(String name) {
        return switch (name) {
            case "seq_bn", "pfeiffer" -> seqBn();
            case "double_seq_bn", "houlsby" -> doubleSeqBn();
            case "par_bn" -> parBn();
            default -> throw new IllegalArgumentException("unknown bottleneck adapter config '" + name
                    + "' (seq_bn, pfeiffer, double_seq_bn, houlsby, par_bn)");
        };
    }

    /** From the {@code config} block of an AdapterHub {@code adapter_config.json}; {@code source} names it in errors. */
    public static BnConfig fromMap(Map<String, Object> block, String source) {
        Object arch = block.get("architecture");
        if (arch != null && !"bottleneck".equals(arch)) {
            throw new IllegalArgumentException(source + ": config.architecture is '" + arch + "'; peft4j reads bottleneck adapters");
        }
        BnConfig c = new BnConfig(BASE);
        for (Map.Entry<String, Object> e : block.entrySet()) {
            if (!BASE.containsKey(e.getKey())) {
                throw new IllegalArgumentException(source + ": unknown bottleneck config key 'config." + e.getKey() + "'");
            }
            c.set(e.getKey(), e.getValue());
        }
        try {
            c.validate();
        } catch (IllegalArgumentException ex) {
            throw new IllegalArgumentException(source + ": " + ex.getMessage(), ex);
        }
        return c;
    }

    /** Sets key {@code key} (AdapterHub's name) and returns this config. */
    public BnConfig set(String key, Object value) {
        if (!BASE.containsKey(key)) {
            throw new IllegalArgumentException("unknown bottleneck config key '" + key + "' (keys: " + BASE.keySet() + ")");
        }
        if (value instanceof Collection<?> col) {
            value = List.copyOf(new ArrayList<Object>(col));
        }
        values.put(key, value);
        return this;
    }

    /** The {@code config} block as written (sorted keys). */
    public Map<String, Object> toMap() {
        return new TreeMap<>(values);
    }

    /** Checks every key; throws {@link IllegalArgumentException} naming the key. */
    public void validate() {
        for (Map.Entry<String, Object> e : values.entrySet()) {
            if (!IMPLEMENTED.contains(e.getKey()) && !java.util.Objects.equals(norm(e.getValue()), norm(BASE.get(e.getKey())))) {
                throw new IllegalArgumentException("config." + e.getKey() + " = " + e.getValue()
                        + " is not supported by peft4j (only its default " + BASE.get(e.getKey()) + ")");
            }
        }
        bool("mh_adapter");
        bool("output_adapter");
        bool("original_ln_before");
        bool("original_ln_after");
        bool("ln_before");
        bool("ln_after");
        bool("is_parallel");
        bool("adapter_residual_before_ln");
        Object r = values.get("residual_before_ln");
        if (!(r instanceof Boolean) && !"post_add".equals(r)) {
            throw new IllegalArgumentException("config.residual_before_ln must be true, false or \"post_add\", got " + r);
        }
        Object rf = values.get("reduction_factor");
        if (rf instanceof Map<?, ?> m) {
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (!(e.getValue() instanceof Number n) || n.doubleValue() <= 0) {
                    throw new IllegalArgumentException("config.reduction_factor['" + e.getKey() + "'] must be a positive number, got "
                            + e.getValue());
                }
            }
        } else if (!(rf instanceof Number n) || n.doubleValue() <= 0) {
            throw new IllegalArgumentException("config.reduction_factor must be a positive number or a mapping, got " + rf);
        }
        Object s = values.get("scaling");
        if (!(s instanceof Number) && !"learned".equals(s) && !"channel".equals(s)) {
            throw new IllegalArgumentException("config.scaling must be a number, \"learned\" or \"channel\", got " + s);
        }
        String init = String.valueOf(values.get("init_weights"));
        if (!Set.of("bert", "mam_adapter", "houlsby").contains(init)) {
            throw new IllegalArgumentException("config.init_weights must be bert, mam_adapter or houlsby, got " + init);
        }
        double p = ((Number) values.get("dropout")).doubleValue();
        if (p < 0 || p >= 1) {
            throw new IllegalArgumentException("config.dropout must be in [0, 1), got " + p);
        }
        new org.peft4j.core.nn.Activation(nonLinearity());   // throws for an unknown name
        if (!mhAdapter() && !outputAdapter()) {
            throw new IllegalArgumentException("config.mh_adapter and config.output_adapter are both false: the adapter is nowhere");
        }
    }

    private static Object norm(Object v) {
        return v instanceof Number n ? (Object) n.doubleValue() : v;
    }

    private boolean bool(String key) {
        Object v = values.get(key);
        if (!(v instanceof Boolean b)) {
            throw new IllegalArgumentException("config." + key + " must be a boolean, got " + v);
        }
        return b;
    }

    public boolean mhAdapter() {
        return bool("mh_adapter");
    }

    public boolean outputAdapter() {
        return bool("output_adapter");
    }

    public boolean originalLnBefore() {
        return bool("original_ln_before");
    }

    public boolean originalLnAfter() {
        return bool("original_ln_after");
    }

    public boolean lnBefore() {
        return bool("ln_before");
    }

    public boolean lnAfter() {
        return bool("ln_after");
    }

    public boolean isParallel() {
        return bool("is_parallel");
    }

    public boolean adapterResidualBeforeLn() {
        return bool("adapter_residual_before_ln");
    }

    /** {@code true}, {@code false} or {@code "post_add"}. */
    public Object residualBeforeLn() {
        return values.get("residual_before_ln");
    }

    public String nonLinearity() {
        return String.valueOf(values.get("non_linearity")).toLowerCase(java.util.Locale.ROOT);
    }

    public String initWeights() {
        return String.valueOf(values.get("init_weights"));
    }

    public Long initWeightsSeed() {
        Object v = values.get("init_weights_seed");
        return v == null ? null : ((Number) v).longValue();
    }

    public double dropout() {
        return ((Number) values.get("dropout")).doubleValue();
    }

    /** A number, {@code "learned"} or {@code "channel"}. */
    public Object scaling() {
        return values.get("scaling");
    }

    @SuppressWarnings("unchecked")
    public List<Integer> leaveOut() {
        List<Integer> out = new ArrayList<>();
        for (Object o : (Collection<Object>) values.get("leave_out")) {
            out.add(((Number) o).intValue());
        }
        return out;
    }

    /** The reduction factor of layer {@code layer} (a mapping gives per-layer values and a "default"). */
    public double reductionFactor(int layer) {
        Object rf = values.get("reduction_factor");
        if (rf instanceof Map<?, ?> m) {
            Object v = m.containsKey(String.valueOf(layer)) ? m.get(String.valueOf(layer)) : m.get("default");
            if (v == null) {
                throw new IllegalArgumentException("config.reduction_factor " + m + " gives no value for layer " + layer
                        + " and no \"default\"");
            }
            return ((Number) v).doubleValue();
        }
        return ((Number) rf).doubleValue();
    }

    /**
     * The bottleneck width for a stream of {@code hidden}, {@code int(hidden // reduction_factor)}.
     *
     * @throws IllegalArgumentException when it is below 1 (no bottleneck dimension is left)
     */
    public int bottleneckSize(int hidden, int layer) {
        double rf = reductionFactor(layer);
        int d = (int) Math.floor(hidden / rf);
        if (d < 1) {
            throw new IllegalArgumentException("config.reduction_factor " + rf + " leaves no bottleneck dimension for hidden size "
                    + hidden + " (int(" + hidden + " // " + rf + ") = " + d + ")");
        }
        return d;
    }

    @Override
    public String toString() {
        return "BnConfig" + values;
    }
}
