package org.peft4j.core.peft;

import org.peft4j.core.nn.LinearLayer;
import org.peft4j.core.nn.Module;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Which modules an adapter targets, with PEFT's rules ({@code check_target_module_exists} and
 * {@code _maybe_include_all_linear_layers} in {@code peft.tuners.tuners_utils}):
 * <ul>
 *   <li>a list entry matches a module whose full dotted name equals it or ends with {@code "." + entry};</li>
 *   <li>a string is a regular expression that must match the whole name;</li>
 *   <li>{@code "all-linear"} becomes every linear layer except the output head: the top-level
 *       {@code lm_head}, and for {@link TaskType#SEQ_CLS} the top-level {@code score} or
 *       {@code classifier} (the first found);</li>
 *   <li>{@code layers_to_transform} keeps list matches whose layer index (the number after
 *       {@code <layers_pattern>.} or, without a pattern, after any {@code .name.}) is listed; an
 *       exact full-name entry bypasses this filter, as in PEFT;</li>
 *   <li>a module inside {@code modules_to_save} is never a target; neither is any module inside
 *       an existing adapter layer or modules-to-save wrapper.</li>
 * </ul>
 */
public final class TargetMatcher {
    /** Top-level child names PEFT treats as sequence-classification heads, in its order. */
    public static final List<String> SEQ_CLS_HEAD_NAMES = List.of("score", "classifier");
    /** The output embedding (language-model head) name. */
    public static final String LM_HEAD = "lm_head";

    private static final Pattern ANY_LAYER_INDEX = Pattern.compile(".*\\.[^.]*\\.(\\d+)\\.");

    private TargetMatcher() {
    }

    /** What to match: PEFT's target keys of one config. Lists may be null (absent). */
    public record Spec(TargetModules targetModules, TargetModules excludeModules, List<Integer> layersToTransform,
                       List<String> layersPattern, List<String> modulesToSave, TaskType taskType) {
    }

    /** PEFT's {@code check_target_module_exists} for one module name (all-linear must be resolved first). */
    public static boolean matches(Spec spec, String key) {
        TargetModules ex = spec.excludeModules();
        if (ex != null) {
            if (ex.isList()) {
                if (listMatch(ex.names(), key)) {
                    return false;
                }
            } else if (fullMatch(ex.pattern(), key, "exclude_modules")) {
                return false;
            }
        }
        if (spec.modulesToSave() != null) {
            for (String m : spec.modulesToSave()) {
                if (compile("(?:.*\\.)?(?:" + m + ")(?:\\..*)?", "modules_to_save").matcher(key).matches()) {
                    return false;
                }
            }
        }
        TargetModules t = spec.targetModules();
        if (t == null) {
            return false;
        }
        if (t.isAllLinear()) {
            throw new IllegalStateException("resolve \"all-linear\" with TargetMatcher.findTargets before matching");
        }
        if (!t.isList()) {
            return fullMatch(t.pattern(), key, "target_modules");
        }
        if (t.names().contains(key)) {
            return true; // an exact full name bypasses the layer filter, as in PEFT
        }
        boolean found = false;
        for (String n : t.names()) {
            if (key.endsWith("." + n)) {
                found = true;
                break;
            }
        }
        List<Integer> layers = spec.layersToTransform();
        if (found && layers != null && !layers.isEmpty()) {
            Integer index = layerIndex(key, spec.layersPattern());
            found = index != null && layers.contains(index);
        }
        return found;
    }

    /** The layer index PEFT reads from a module name, or null when there is none. */
    static Integer layerIndex(String key, List<String> layersPattern) {
        if (layersPattern == null || layersPattern.isEmpty()) {
            Matcher m = ANY_LAYER_INDEX.matcher(key);
            return m.lookingAt() ? Integer.valueOf(m.group(1)) : null;
        }
        for (String p : layersPattern) {
            Matcher m = compile(".*\\.(?:" + p + ")\\.(\\d+)\\.", "layers_pattern").matcher(key);
            if (m.lookingAt()) {
                return Integer.valueOf(m.group(1));
            }
        }
        return null;
    }

    /**
     * The paths (in tree order) of the modules the spec targets. {@code "all-linear"} is resolved
     * against the model first.
     *
     * @throws IllegalArgumentException when nothing matches, naming the targets and some module
     *                                  names that do exist
     */
    public static List<String> findTargets(Module model, Spec spec) {
        if (spec.targetModules() == null) {
            throw new IllegalArgumentException("target_modules must be set (a list of names, a regex, or \"all-linear\")");
        }
        Spec s = spec;
        if (spec.targetModules().isAllLinear()) {
            Set<String> linear = allLinearNames(model, spec.taskType());
            if (linear.isEmpty()) {
                throw new IllegalArgumentException("target_modules \"all-linear\" found no linear layer in "
                        + model.getClass().getSimpleName() + " (modules: " + someNames(model) + ")");
            }
            s = new Spec(TargetModules.of(linear), spec.excludeModules(), spec.layersToTransform(), spec.layersPattern(),
                    spec.modulesToSave(), spec.taskType());
        }
        List<String> out = new ArrayList<>();
        for (String key : candidateNames(model)) {
            if (matches(s, key)) {
                out.add(key);
            }
        }
        if (out.isEmpty()) {
            StringBuilder why = new StringBuilder("target_modules ").append(spec.targetModules());
            if (spec.layersToTransform() != null && !spec.layersToTransform().isEmpty()) {
                why.append(" with layers_to_transform ").append(spec.layersToTransform());
                if (spec.layersPattern() != null) {
                    why.append(" and layers_pattern ").append(spec.layersPattern());
                }
            }
            throw new IllegalArgumentException(why + " matched no module of " + model.getClass().getSimpleName()
                    + "; module names that exist include " + someNames(model));
        }
        return out;
    }

    /** Module paths eligible as targets: everything except the root and the insides of adapter layers/wrappers. */
    static List<String> candidateNames(Module model) {
        List<String> out = new ArrayList<>();
        List<String> sealed = new ArrayList<>();
        for (Map.Entry<String, Module> e : model.namedModules().entrySet()) {
            String key = e.getKey();
            if (key.isEmpty() || insideAny(key, sealed)) {
                continue;
            }
            out.add(key);
            if (e.getValue() instanceof AdapterLayer) {
                sealed.add(key);
            }
        }
        return out;
    }

    private static boolean insideAny(String key, List<String> prefixes) {
        for (String p : prefixes) {
            if (key.startsWith(p + ".")) {
                return true;
            }
        }
        return false;
    }

    /**
     * True for layers "all-linear" counts as linear: every {@link LinearLayer} (fp32, GPT-2 Conv1D,
     * quantized), and an adapter layer around one (a second adapter then targets it again). A
     * modules-to-save wrapper is not counted: it replaces its module rather than adapting it.
     */
    public static boolean isLinear(Module m) {
        if (m instanceof LinearLayer) {
            return true;
        }
        return m instanceof AdapterLayer a && !(m instanceof ModulesToSaveWrapper) && a.baseLayer() instanceof LinearLayer;
    }

    /** PEFT's {@code _maybe_include_all_linear_layers}: full names of the linear layers, minus the head. */
    public static Set<String> allLinearNames(Module model, TaskType taskType) {
        Set<String> names = new LinkedHashSet<>();
        for (String key : candidateNames(model)) {
            if (isLinear(model.get(key))) {
                names.add(key);
            }
        }
        if (model.child(LM_HEAD) != null) {
            names.remove(LM_HEAD);
        } else if (taskType == TaskType.SEQ_CLS) {
            for (String head : SEQ_CLS_HEAD_NAMES) {
                if (model.child(head) != null) {
                    names.remove(head);
                    break;
                }
            }
        }
        return names;
    }

    private static boolean listMatch(List<String> names, String key) {
        if (names.contains(key)) {
            return true;
        }
        for (String n : names) {
            if (key.endsWith("." + n)) {
                return true;
            }
        }
        return false;
    }

    private static boolean fullMatch(String regex, String key, String what) {
        return compile(regex, what).matcher(key).matches();
    }

    private static final Map<String, Pattern> CACHE = new java.util.concurrent.ConcurrentHashMap<>();

    private static Pattern compile(String regex, String what) {
        Pattern p = CACHE.get(regex);
        if (p == null) {
            try {
                p = Pattern.compile(regex);
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException("invalid regular expression in " + what + ": '" + regex + "': "
                        + e.getDescription(), e);
            }
            CACHE.put(regex, p);
        }
        return p;
    }

    /** Up to a dozen module names, preferring the leaves' last segments, for error messages. */
    static List<String> someNames(Module model) {
        Set<String> leaves = new TreeSet<>();
        List<String> paths = new ArrayList<>();
        for (Map.Entry<String, Module> e : model.namedModules().entrySet()) {
            if (e.getKey().isEmpty()) {
                continue;
            }
            if (e.getValue().children().isEmpty()) {
                String k = e.getKey();
                leaves.add(k.substring(k.lastIndexOf('.') + 1));
                if (paths.size() < 4) {
                    paths.add(k);
                }
            }
        }
        List<String> out = new ArrayList<>(paths);
        for (String l : leaves) {
            if (out.size() >= 12) {
                break;
            }
            if (!out.contains(l)) {
                out.add(l);
            }
        }
        return out;
    }
}
