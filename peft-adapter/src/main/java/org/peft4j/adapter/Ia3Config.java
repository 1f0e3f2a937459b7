package org.peft4j.adapter;

import com.fasterxml.jackson.annotation.JsonProperty;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.TargetMatcher;
import org.peft4j.core.peft.TargetModules;
import org.peft4j.core.peft.TaskType;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * PEFT's {@code IA3Config} ({@code peft_type = "IA3"}): {@code target_modules},
 * {@code feedforward_modules}, {@code exclude_modules}, {@code fan_in_fan_out},
 * {@code init_ia3_weights}, {@code modules_to_save}. Absent target / feed-forward lists are
 * filled with PEFT's defaults for the model's family when the adapter is injected
 * ({@link Ia3Method#defaultTargets}), and saved that way, as PEFT does.
 */
public final class Ia3Config extends PeftConfig {
    public static final String PEFT_TYPE = "IA3";

    @JsonProperty("target_modules")
    private TargetModules targetModules;
    @JsonProperty("feedforward_modules")
    private TargetModules feedforwardModules;
    @JsonProperty("exclude_modules")
    private TargetModules excludeModules;
    @JsonProperty("fan_in_fan_out")
    private boolean fanInFanOut;
    @JsonProperty("init_ia3_weights")
    private boolean initIa3Weights = true;

    public Ia3Config() {
    }

    @Override
    public String peftType() {
        return PEFT_TYPE;
    }

    @Override
    protected boolean tolerateKnownKey(String key, Object value) {
        if (key.equals("layers_to_transform") || key.equals("layers_pattern")) {
            if (value != null) {
                throw new IllegalArgumentException(key + " is not supported for IA3 in peft4j (got " + value + ")");
            }
            return true;
        }
        return super.tolerateKnownKey(key, value);
    }

    /**
     * PEFT's check: when both are lists, every {@code feedforward_modules} entry must be one of
     * {@code target_modules}.
     */
    @Override
    public void validate() {
        if (targetModules != null && feedforwardModules != null && targetModules.isList() && feedforwardModules.isList()) {
            Set<String> t = new HashSet<>(targetModules.names());
            for (String f : feedforwardModules.names()) {
                if (!t.contains(f)) {
                    throw new IllegalArgumentException("feedforward_modules entry '" + f + "' is not among target_modules "
                            + targetModules.names() + " (feedforward_modules must be a subset of target_modules)");
                }
            }
        }
        if (feedforwardModules != null && feedforwardModules.isAllLinear()) {
            throw new IllegalArgumentException("feedforward_modules cannot be \"all-linear\"; list the feed-forward modules");
        }
    }

    public TargetMatcher.Spec targetSpec() {
        return new TargetMatcher.Spec(targetModules, excludeModules, null, null, modulesToSave(), taskType());
    }

    public TargetModules targetModules() {
        return targetModules;
    }

    public TargetModules feedforwardModules() {
        return feedforwardModules;
    }

    public TargetModules excludeModules() {
        return excludeModules;
    }

    public boolean fanInFanOut() {
        return fanInFanOut;
    }

    public boolean initIa3Weights() {
        return initIa3Weights;
    }

    // ---- fluent setters (validated on use) -----------------------------------------------------

    public Ia3Config targetModules(String... names) {
        this.targetModules = TargetModules.of(names);
        return this;
    }

    public Ia3Config targetModules(TargetModules t) {
        this.targetModules = t;
        return this;
    }

    public Ia3Config feedforwardModules(String... names) {
        this.feedforwardModules = TargetModules.of(names);
        return this;
    }

    public Ia3Config feedforwardModules(TargetModules t) {
        this.feedforwardModules = t;
        return this;
    }

    public Ia3Config excludeModules(String... names) {
        this.excludeModules = TargetModules.of(names);
        return this;
    }

    public Ia3Config fanInFanOut(boolean on) {
        this.fanInFanOut = on;
        return this;
    }

    public Ia3Config initIa3Weights(boolean on) {
        this.initIa3Weights = on;
        return this;
    }

    public Ia3Config modulesToSave(String... names) {
        setModulesToSave(List.of(names));
        return this;
    }

    public Ia3Config taskType(TaskType t) {
        setTaskType(t);
        return this;
    }

    public Ia3Config seed(long s) {
        setSeed(s);
        return this;
    }
}
