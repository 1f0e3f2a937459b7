package org.peft4j.adapter;

import org.peft4j.core.model.llama.LlamaModel;
import org.peft4j.core.nn.LinearLayer;
import org.peft4j.core.nn.Module;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftMethod;
import org.peft4j.core.peft.TargetMatcher;
import org.peft4j.core.peft.TargetModules;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.regex.Pattern;

/**
 * PEFT's IA3 ({@code peft_type = "IA3"}): wraps each target {@link LinearLayer} in an
 * {@link Ia3Layer}; saved as {@code base_model.model.<path>.ia3_l} ({@code [1, in]} for
 * feed-forward modules, {@code [out, 1]} otherwise). Merges into fp32 weights.
 *
 * <p>Without {@code target_modules} / {@code feedforward_modules} PEFT's defaults for the model's
 * family are used (PEFT looks them up by {@code model_type}; peft4j recognises the family by
 * its module names): BERT {@code key, value, output.dense} / {@code output.dense}; GPT-2
 * {@code c_attn, mlp.c_proj} / {@code mlp.c_proj}; LLaMA, Mistral {@code k_proj, v_proj,
 * down_proj} / {@code down_proj}; Qwen2 {@code q_proj, v_proj, down_proj} / {@code down_proj}. A list entry of {@code feedforward_modules} marks every target
 * whose name ends with it (PEFT's {@code key.endswith}: in BERT {@code attention.output.dense}
 * too); a string is a regular expression matched against the whole name.
 */
public final class Ia3Method implements PeftMethod {
    private static final Logger LOG = LoggerFactory.getLogger(Ia3Method.class);

    /** PEFT's default (targets, feed-forward targets) of one family. */
    public record Defaults(String family, List<String> targets, List<String> feedforward) {
    }

    @Override
    public String peftType() {
        return Ia3Config.PEFT_TYPE;
    }

    @Override
    public Class<? extends PeftConfig> configClass() {
        return Ia3Config.class;
    }

    @Override
    public boolean supportsMerge() {
        return true;
    }

    /**
     * PEFT's defaults for the family {@code model} belongs to, recognised from its module names.
     *
     * @throws IllegalArgumentException when the family is not one peft4j knows
     */
    public static Defaults defaultTargets(Module model) {
        String type = org.peft4j.core.model.ModelFamilies.modelTypeOf(model).orElse("");
        if (type.equals("t5") || type.equals("mt5")) {
            // PEFT: TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING["t5"] = ["k", "v", "wo"], feedforward ["wo"]
            return new Defaults(type, List.of("k", "v", "wo"), List.of("wo"));
        }
        boolean cAttn = false, kProj = false, bertKey = false;
        for (String path : model.namedModules().keySet()) {
            String last = path.substring(path.lastIndexOf('.') + 1);
            cAttn |= last.equals("c_attn");
            kProj |= last.equals("k_proj");
            bertKey |= path.endsWith("attention.self.key");
        }
        if (cAttn) {
            return new Defaults("gpt2", List.of("c_attn", "mlp.c_proj"), List.of("mlp.c_proj"));
        }
        if (kProj) {
            // PEFT's mapping differs for qwen2 (q_proj, not k_proj); the family is read from the config
            boolean qwen2 = model instanceof LlamaModel lm0 && "qwen2".equals(lm0.config().modelType());
            for (Module m : model.namedModules().values()) {
                qwen2 |= m instanceof LlamaModel lm && "qwen2".equals(lm.config().modelType());
            }
            return qwen2
                    ? new Defaults("qwen2", List.of("q_proj", "v_proj", "down_proj"), List.of("down_proj"))
                    : new Defaults("llama", List.of("k_proj", "v_proj", "down_proj"), List.of("down_proj"));
        }
        if (bertKey) {
            return new Defaults("bert", List.of("key", "value", "output.dense"), List.of("output.dense"));
        }
        throw new IllegalArgumentException("IA3 has no default target_modules / feedforward_modules for a "
                + model.getClass().getSimpleName() + " (known families: BERT, GPT-2, LLaMA/Mistral/Qwen2); "
                + "set target_modules and feedforward_modules in the config");
    }

    /** PEFT's {@code _check_target_module_feedforward}. */
    static boolean isFeedforward(TargetModules ff, String key) {
        if (ff == null) {
            return false;
        }
        if (ff.isList()) {
            for (String e : ff.names()) {
                if (key.endsWith(e)) {
                    return true;
                }
            }
            return false;
        }
        return Pattern.compile(ff.pattern()).matcher(key).matches();
    }

    @Override
    public List<String> inject(Module model, PeftConfig config, String adapterName, boolean forLoading) {
        Ia3Config c = (Ia3Config) config;
        if (c.targetModules() == null || c.feedforwardModules() == null) {
            Defaults d = defaultTargets(model);
            if (c.targetModules() == null) {
                c.targetModules(TargetModules.of(d.targets()));
            }
            if (c.feedforwardModules() == null) {
                c.feedforwardModules(TargetModules.of(d.feedforward()));
            }
            c.validate();
        }
        List<String> targets = TargetMatcher.findTargets(model, c.targetSpec());
        boolean anyFifo = false;
        for (String key : targets) {
            Module m = model.get(key);
            Module inner = m instanceof Ia3Layer l ? l.baseLayer() : m;
            if (!(inner instanceof LinearLayer lin)) {
                throw new IllegalArgumentException("target module '" + key + "' is a " + m.getClass().getSimpleName()
                        + "; IA3 supports linear layers (Linear, GPT-2 Conv1D, quantized) (target_modules "
                        + c.targetModules() + ")");
            }
            anyFifo |= lin.isFanInFanOut();
            if (m instanceof Ia3Layer l) {
                if (l.hasAdapter(adapterName)) {
                    throw new IllegalArgumentException("module '" + key + "' already has IA3 adapter '" + adapterName + "'");
                }
                if (l.isFeedforward() != isFeedforward(c.feedforwardModules(), key)) {
                    throw new IllegalArgumentException("module '" + key + "' is " + (l.isFeedforward() ? "" : "not ")
                            + "a feed-forward IA3 module for its first adapter; feedforward_modules "
                            + c.feedforwardModules() + " of adapter '" + adapterName + "' disagrees");
                }
            }
        }
        if (anyFifo != c.fanInFanOut()) {
            // as PEFT for Conv1D: each layer's own layout is used, the flag is corrected (and saved so)
            LOG.warn("fan_in_fan_out={} does not fit the IA3 targets; set to {}", c.fanInFanOut(), anyFifo);
            c.fanInFanOut(anyFifo);
        }
        long i = 0;
        for (String key : targets) {
            Module m = model.get(key);
            Ia3Layer layer = m instanceof Ia3Layer l ? l : new Ia3Layer(m, isFeedforward(c.feedforwardModules(), key));
            layer.addAdapter(adapterName, c.initIa3Weights(), c.seed() * 1_000_003L + (i++));
            if (layer != m) {
                model.replace(key, layer);
            }
        }
        return targets;
    }

    /** {@code <path>.ia3_l.<adapter>} (PEFT's in-memory name) stands for the saved {@code <path>.ia3_l}. */
    @Override
    public String normalizeKey(String storedKey) {
        return storedKey.replaceFirst("^(.*\\.ia3_l)\\.[^.]+$", "$1");
    }
}
