package org.peft4j.lora;

import com.fasterxml.jackson.annotation.JsonGetter;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonSetter;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.TargetMatcher;
import org.peft4j.core.peft.TargetModules;
import org.peft4j.core.peft.TaskType;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * PEFT's {@code LoraConfig}: the keys and defaults of {@code peft.LoraConfig}, read from and
 * written to {@code adapter_config.json}.
 *
 * <pre>{@code
 * LoraConfig c = LoraConfig.builder()
 *         .r(8).loraAlpha(16).loraDropout(0.1)
 *         .targetModules("query", "value")
 *         .taskType(TaskType.SEQ_CLS).modulesToSave("classifier")
 *         .seed(42)
 *         .build();
 * }</pre>
 *
 * <p>{@code init_lora_weights} is held as a string: {@code "true"} (Kaiming-uniform A, zero B),
 * {@code "false"} (both random, so a fresh adapter is not the identity), {@code "gaussian"},
 * {@code "pissa"} / {@code "pissa_niter_N"} (exact SVD in both cases), {@code "olora"}; it is
 * written back as a JSON boolean or string as PEFT does.
 */
public final class LoraConfig extends PeftConfig {
    public static final String PEFT_TYPE = "LORA";

    /** PEFT LoRA keys whose value peft4j ignores whatever it is. */
    private static final Set<String> IGNORED_ANY = Set.of("megatron_core", "qalora_group_size", "runtime_config");
    /** PEFT LoRA keys of features peft4j does not implement: accepted only with their inert default. */
    private static final Set<String> UNSUPPORTED = Set.of("lora_bias", "layer_replication", "loftq_config",
            "megatron_config", "use_qalora", "trainable_token_indices", "target_parameters", "eva_config",
            "corda_config", "alora_invocation_tokens", "arrow_config", "ensure_weight_tying", "use_bdlora",
            "bdlora_config", "lora_ga_config");
    private static final Pattern PISSA_NITER = Pattern.compile("pissa_niter_\\d+");

    @JsonProperty("r")
    private int r = 8;
    @JsonProperty("lora_alpha")
    private int loraAlpha = 8;
    @JsonProperty("lora_dropout")
    private double loraDropout = 0.0;
    @JsonProperty("target_modules")
    private TargetModules targetModules;
    @JsonProperty("exclude_modules")
    private TargetModules excludeModules;
    @JsonProperty("bias")
    private String bias = "none";
    @JsonProperty("fan_in_fan_out")
    private boolean fanInFanOut;
    @JsonProperty("use_rslora")
    private boolean useRslora;
    @JsonProperty("use_dora")
    private boolean useDora;
    private String initLoraWeights = "true";
    @JsonProperty("rank_pattern")
    private LinkedHashMap<String, Integer> rankPattern = new LinkedHashMap<>();
    @JsonProperty("alpha_pattern")
    private LinkedHashMap<String, Integer> alphaPattern = new LinkedHashMap<>();
    private List<Integer> layersToTransform;
    private List<String> layersPattern;

    public LoraConfig() {
    }

    @Override
    public String peftType() {
        return PEFT_TYPE;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A builder starting from this config's values (and seed). */
    public Builder toBuilder() {
        return new Builder((LoraConfig) copy());
    }

    // ---- JSON forms that are a union type in PEFT ----------------------------------------------

    @JsonGetter("init_lora_weights")
    private Object initLoraWeightsJson() {
        if ("true".equals(initLoraWeights)) {
            return Boolean.TRUE;
        }
        if ("false".equals(initLoraWeights)) {
            return Boolean.FALSE;
        }
        return initLoraWeights;
    }

    @JsonSetter("init_lora_weights")
    private void initLoraWeightsJson(Object v) {
        if (v instanceof Boolean b) {
            initLoraWeights = b.toString();
        } else if (v instanceof String s) {
            initLoraWeights = s;
        } else {
            throw new IllegalArgumentException("init_lora_weights must be a boolean or a string, got " + v);
        }
    }

    @JsonGetter("layers_to_transform")
    private List<Integer> layersToTransformJson() {
        return layersToTransform;
    }

    @JsonSetter("layers_to_transform")
    private void layersToTransformJson(Object v) {
        if (v == null) {
            layersToTransform = null;
        } else if (v instanceof Number n) {
            layersToTransform = List.of(n.intValue());
        } else if (v instanceof Collection<?> c) {
            List<Integer> out = new ArrayList<>();
            for (Object o : c) {
                if (!(o instanceof Number n)) {
                    throw new IllegalArgumentException("layers_to_transform entries must be integers, got " + o);
                }
                out.add(n.intValue());
            }
            layersToTransform = List.copyOf(out);
        } else {
            throw new IllegalArgumentException("layers_to_transform must be an integer or a list of integers, got " + v);
        }
    }

    @JsonGetter("layers_pattern")
    private List<String> layersPatternJson() {
        return layersPattern;
    }

    @JsonSetter("layers_pattern")
    private void layersPatternJson(Object v) {
        if (v == null) {
            layersPattern = null;
        } else if (v instanceof String s) {
            layersPattern = List.of(s);
        } else if (v instanceof Collection<?> c) {
            List<String> out = new ArrayList<>();
            for (Object o : c) {
                out.add(String.valueOf(o));
            }
            layersPattern = List.copyOf(out);
        } else {
            throw new IllegalArgumentException("layers_pattern must be a string or a list of strings, got " + v);
        }
    }

    @Override
    protected boolean tolerateKnownKey(String key, Object value) {
        if (super.tolerateKnownKey(key, value) || IGNORED_ANY.contains(key)) {
            return true;
        }
        if (UNSUPPORTED.contains(key)) {
            if (isInert(value)) {
                return true;
            }
            throw new IllegalArgumentException("'" + key + "' = " + value + " asks for a PEFT feature peft4j does not implement");
        }
        return false;
    }

    private static boolean isInert(Object v) {
        return v == null || Boolean.FALSE.equals(v) || (v instanceof Map<?, ?> m && m.isEmpty())
                || (v instanceof Collection<?> c && c.isEmpty());
    }

    // ---- validation -------------------------------------------------------------------------------

    @Override
    public void validate() {
        if (r <= 0) {
            throw new IllegalArgumentException("r must be a positive integer, got " + r);
        }
        if (!(loraDropout >= 0.0 && loraDropout < 1.0)) {
            throw new IllegalArgumentException("lora_dropout must be in [0, 1), got " + loraDropout);
        }
        if (bias == null || !Set.of("none", "all", "lora_only").contains(bias)) {
            throw new IllegalArgumentException("bias must be 'none', 'all' or 'lora_only', got '" + bias + "'");
        }
        String init = initLoraWeights;
        if (init == null) {
            throw new IllegalArgumentException("init_lora_weights must not be null");
        }
        if (!(init.equals("true") || init.equals("false") || init.equalsIgnoreCase("gaussian") || init.equals("pissa")
                || PISSA_NITER.matcher(init).matches() || init.equalsIgnoreCase("olora"))) {
            throw new IllegalArgumentException("init_lora_weights must be true, false, \"gaussian\", \"pissa\", "
                    + "\"pissa_niter_<n>\" or \"olora\", got '" + init + "'");
        }
        if (targetModules != null && !targetModules.isList()) {
            if (layersToTransform != null) {
                throw new IllegalArgumentException("layers_to_transform cannot be used when target_modules is a string");
            }
            if (layersPattern != null) {
                throw new IllegalArgumentException("layers_pattern cannot be used when target_modules is a string");
            }
        }
        // "rank_pattern": null / "alpha_pattern": null mean no pattern, as in PEFT (a falsy value)
        if (rankPattern == null) {
            rankPattern = new LinkedHashMap<>();
        }
        if (alphaPattern == null) {
            alphaPattern = new LinkedHashMap<>();
        }
        for (Map.Entry<String, Integer> e : rankPattern.entrySet()) {
            if (e.getValue() == null || e.getValue() <= 0) {
                throw new IllegalArgumentException("rank_pattern['" + e.getKey() + "'] must be a positive integer, got " + e.getValue());
            }
        }
        for (Map.Entry<String, Integer> e : alphaPattern.entrySet()) {
            if (e.getValue() == null) {
                throw new IllegalArgumentException("alpha_pattern['" + e.getKey() + "'] must be a number");
            }
        }
    }

    /** The matcher spec of this config's targeting keys. */
    public TargetMatcher.Spec targetSpec() {
        return new TargetMatcher.Spec(targetModules, excludeModules, layersToTransform, layersPattern, modulesToSave(), taskType());
    }

    /** PEFT's {@code get_pattern_key}: the first pattern {@code p} with {@code (.*\.)?(p)} matching the key. */
    static <V> V patternValue(Map<String, V> patterns, String key, V dflt) {
        for (Map.Entry<String, V> e : patterns.entrySet()) {
            if (Pattern.compile("(.*\\.)?(" + e.getKey() + ")").matcher(key).matches()) {
                return e.getValue();
            }
        }
        return dflt;
    }

    /** The rank for a module path (rank_pattern, else r). */
    public int rankFor(String modulePath) {
        return patternValue(rankPattern, modulePath, r);
    }

    /** The alpha for a module path (alpha_pattern, else lora_alpha). */
    public int alphaFor(String modulePath) {
        return patternValue(alphaPattern, modulePath, loraAlpha);
    }

    /** alpha / r, or alpha / √r with rsLoRA. */
    public static double scaling(int alpha, int r, boolean rslora) {
        return rslora ? alpha / Math.sqrt(r) : (double) alpha / r;
    }

    /**
     * The config of an adapter built by combining others (PEFT's {@code add_weighted_adapter}):
     * this config with rank {@code newRank}, alpha = rank (scaling 1), no rsLoRA, no DoRA, no
     * patterns or layer filters, no modules to save, and exactly the given module paths as targets.
     */
    LoraConfig combined(int newRank, java.util.Collection<String> modulePaths) {
        LoraConfig c = (LoraConfig) copy();
        c.r = newRank;
        c.loraAlpha = newRank;
        c.useRslora = false;
        c.useDora = false;
        c.initLoraWeights = "true";
        c.rankPattern = new LinkedHashMap<>();
        c.alphaPattern = new LinkedHashMap<>();
        c.targetModules = TargetModules.of(modulePaths);
        c.excludeModules = null;
        c.layersToTransform = null;
        c.layersPattern = null;
        c.setModulesToSave(null);
        return c;
    }

    /** PEFT corrects the flag to the targets' layout (Conv1D → true, Linear → false); so does peft4j. */
    void setTargetModules(TargetModules t) {
        this.targetModules = t;
    }

    void setFanInFanOut(boolean v) {
        this.fanInFanOut = v;
    }

    // ---- accessors --------------------------------------------------------------------------------

    public int r() {
        return r;
    }

    public int loraAlpha() {
        return loraAlpha;
    }

    public double loraDropout() {
        return loraDropout;
    }

    public TargetModules targetModules() {
        return targetModules;
    }

    public TargetModules excludeModules() {
        return excludeModules;
    }

    /** {@code none}, {@code all} or {@code lora_only}. */
    public String bias() {
        return bias;
    }

    public boolean fanInFanOut() {
        return fanInFanOut;
    }

    public boolean useRslora() {
        return useRslora;
    }

    public boolean useDora() {
        return useDora;
    }

    /** {@code "true"}, {@code "false"}, {@code "gaussian"}, {@code "pissa"}, {@code "pissa_niter_N"} or {@code "olora"}. */
    public String initLoraWeights() {
        return initLoraWeights;
    }

    public Map<String, Integer> rankPattern() {
        return java.util.Collections.unmodifiableMap(rankPattern);
    }

    public Map<String, Integer> alphaPattern() {
        return java.util.Collections.unmodifiableMap(alphaPattern);
    }

    public List<Integer> layersToTransform() {
        return layersToTransform;
    }

    public List<String> layersPattern() {
        return layersPattern;
    }

    /** Fluent construction; {@link #build()} validates. */
    public static final class Builder {
        private final LoraConfig c;

        private Builder() {
            this(new LoraConfig());
        }

        private Builder(LoraConfig c) {
            this.c = c;
        }

        public Builder r(int r) {
            c.r = r;
            return this;
        }

        public Builder loraAlpha(int alpha) {
            c.loraAlpha = alpha;
            return this;
        }

        public Builder loraDropout(double p) {
            c.loraDropout = p;
            return this;
        }

        /** A list of module names (exact or {@code .}-suffix matches). */
        public Builder targetModules(String... names) {
            c.targetModules = TargetModules.of(names);
            return this;
        }

        public Builder targetModules(TargetModules t) {
            c.targetModules = t;
            return this;
        }

        /** A regular expression that must match the whole module name. */
        public Builder targetModulesRegex(String regex) {
            c.targetModules = TargetModules.regex(regex);
            return this;
        }

        /** Every linear layer except the output head. */
        public Builder allLinear() {
            c.targetModules = TargetModules.allLinear();
            return this;
        }

        public Builder excludeModules(TargetModules t) {
            c.excludeModules = t;
            return this;
        }

        /** {@code none}, {@code all} or {@code lora_only}. */
        public Builder bias(String bias) {
            c.bias = bias == null ? null : bias.toLowerCase(Locale.ROOT);
            return this;
        }

        public Builder fanInFanOut(boolean v) {
            c.fanInFanOut = v;
            return this;
        }

        public Builder useRslora(boolean v) {
            c.useRslora = v;
            return this;
        }

        public Builder useDora(boolean v) {
            c.useDora = v;
            return this;
        }

        public Builder initLoraWeights(boolean v) {
            c.initLoraWeights = Boolean.toString(v);
            return this;
        }

        /** {@code "gaussian"}, {@code "pissa"}, {@code "pissa_niter_N"}, {@code "olora"}, {@code "true"}, {@code "false"}. */
        public Builder initLoraWeights(String v) {
            c.initLoraWeights = v;
            return this;
        }

        public Builder rankPattern(Map<String, Integer> p) {
            c.rankPattern = new LinkedHashMap<>(p);
            return this;
        }

        public Builder alphaPattern(Map<String, Integer> p) {
            c.alphaPattern = new LinkedHashMap<>(p);
            return this;
        }

        public Builder layersToTransform(Integer... layers) {
            c.layersToTransform = List.of(layers);
            return this;
        }

        public Builder layersPattern(String... patterns) {
            c.layersPattern = List.of(patterns);
            return this;
        }

        public Builder modulesToSave(String... names) {
            c.setModulesToSave(List.of(names));
            return this;
        }

        public Builder taskType(TaskType t) {
            c.setTaskType(t);
            return this;
        }

        public Builder baseModelNameOrPath(String name) {
            c.setBaseModelNameOrPath(name);
            return this;
        }

        public Builder revision(String revision) {
            c.setRevision(revision);
            return this;
        }

        public Builder inferenceMode(boolean v) {
            c.setInferenceMode(v);
            return this;
        }

        /** Seed of the adapter's random initialization and dropout masks. */
        public Builder seed(long seed) {
            c.setSeed(seed);
            return this;
        }

        public LoraConfig build() {
            c.validate();
            return (LoraConfig) c.copy();
        }
    }
}
