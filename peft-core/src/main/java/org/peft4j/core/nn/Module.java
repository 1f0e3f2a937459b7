package org.peft4j.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A node of the model tree: named parameters and named child modules, in registration order.
 * Names compose with dots exactly as PyTorch's {@code named_parameters()} does, so a parameter's
 * full name is its Hugging Face key ({@code encoder.layer.0.attention.self.query.weight}).
 *
 * <p>The children map is the source of truth: a parent looks its children up by name at
 * forward time ({@link #child(String, Class)}), so {@link #replace(String, Module)} (how LoRA
 * wraps a {@code Linear}) takes effect without the parent knowing.
 */
public abstract class Module {
    private final Map<String, Parameter> parameters = new LinkedHashMap<>();
    private final Map<String, Module> children = new LinkedHashMap<>();
    private boolean training = true;

    protected Parameter registerParameter(String name, Parameter p) {
        checkName(name);
        if (children.containsKey(name)) {
            throw new IllegalArgumentException("'" + name + "' is already a child module of " + getClass().getSimpleName());
        }
        parameters.put(name, p);
        return p;
    }

    protected <M extends Module> M registerModule(String name, M m) {
        checkName(name);
        if (parameters.containsKey(name)) {
            throw new IllegalArgumentException("'" + name + "' is already a parameter of " + getClass().getSimpleName());
        }
        children.put(name, m);
        ((Module) m).setTrainingRecursive(training);
        return m;
    }

    /** Removes the direct child {@code name} (an adapter taken out of a dictionary-like module); returns it or null. */
    protected final Module removeModule(String name) {
        return children.remove(name);
    }

    /**
     * Registers a {@link ResidualHook} module at slot {@code slot} of a {@link ResidualHookSite}
     * (the sites call this from {@link ResidualHookSite#insertResidualHook}).
     */
    protected final void registerResidualHook(String slot, Module hook, java.util.Set<String> slots) {
        if (!slots.contains(slot)) {
            throw new IllegalArgumentException("no residual hook slot '" + slot + "' in " + getClass().getSimpleName()
                    + " (slots: " + slots + ")");
        }
        if (children.containsKey(slot)) {
            throw new IllegalArgumentException("residual hook slot '" + slot + "' of " + getClass().getSimpleName() + " is taken");
        }
        if (!(hook instanceof ResidualHook)) {
            throw new IllegalArgumentException(hook.getClass().getSimpleName() + " is not a ResidualHook");
        }
        registerModule(slot, hook);
    }

    private static void checkName(String name) {
        if (name == null || name.isEmpty() || name.contains(".")) {
            throw new IllegalArgumentException("invalid module/parameter name '" + name + "' (non-empty, no dots)");
        }
    }

    /** A direct parameter by its local name, or null. */
    public Parameter parameter(String name) {
        return parameters.get(name);
    }

    /** A direct child by its local name, cast to the expected type. */
    public <T> T child(String name, Class<T> type) {
        Module m = children.get(name);
        if (m == null) {
            throw new IllegalArgumentException("no child module '" + name + "' in " + getClass().getSimpleName()
                    + " (children: " + children.keySet() + ")");
        }
        if (!type.isInstance(m)) {
            throw new IllegalStateException("child '" + name + "' is a " + m.getClass().getSimpleName()
                    + ", expected " + type.getSimpleName());
        }
        return type.cast(m);
    }

    /** A direct child by its local name, or null. */
    public Module child(String name) {
        return children.get(name);
    }

    /** Direct children, in registration order (read-only view). */
    public Map<String, Module> children() {
        return Collections.unmodifiableMap(children);
    }

    /** Direct parameters, in registration order (read-only view). */
    public Map<String, Parameter> directParameters() {
        return Collections.unmodifiableMap(parameters);
    }

    /** Every parameter in the tree under its dotted name. A parameter shared by two modules is listed once. */
    public Map<String, Parameter> namedParameters() {
        Map<String, Parameter> out = new LinkedHashMap<>();
        java.util.Set<Parameter> seen = Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        collectParameters("", out, seen);
        return out;
    }

    private void collectParameters(String prefix, Map<String, Parameter> out, java.util.Set<Parameter> seen) {
        for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
            if (seen.add(e.getValue())) {
                out.put(prefix + e.getKey(), e.getValue());
            }
        }
        for (Map.Entry<String, Module> e : children.entrySet()) {
            e.getValue().collectParameters(prefix + e.getKey() + ".", out, seen);
        }
    }

    public List<Parameter> parameters() {
        return new ArrayList<>(namedParameters().values());
    }

    /** The trainable parameters under their dotted names (what an optimizer should see). */
    public Map<String, Parameter> namedTrainableParameters() {
        Map<String, Parameter> out = new LinkedHashMap<>();
        namedParameters().forEach((k, p) -> {
            if (p.isTrainable()) {
                out.put(k, p);
            }
        });
        return out;
    }

    /** Every module in the tree under its dotted path; this module itself is {@code ""}. */
    public Map<String, Module> namedModules() {
        Map<String, Module> out = new LinkedHashMap<>();
        collectModules("", out);
        return out;
    }

    private void collectModules(String path, Map<String, Module> out) {
        out.put(path, this);
        for (Map.Entry<String, Module> e : children.entrySet()) {
            e.getValue().collectModules(path.isEmpty() ? e.getKey() : path + "." + e.getKey(), out);
        }
    }

    /** The module at a dotted path ({@code ""} is this module). */
    public Module get(String path) {
        if (path.isEmpty()) {
            return this;
        }
        Module m = this;
        StringBuilder walked = new StringBuilder();
        for (String part : path.split("\\.")) {
            Module next = m.children.get(part);
            if (next == null) {
                throw new IllegalArgumentException("no module at '" + path + "': '" + walked + "' has no child '" + part
                        + "' (children: " + m.children.keySet() + ")");
            }
            if (walked.length() > 0) {
                walked.append('.');
            }
            walked.append(part);
            m = next;
        }
        return m;
    }

    /**
     * Replaces the module at a dotted path and returns the old one. The tree is unchanged when the
     * path does not name an existing child or the replacement is null.
     */
    public Module replace(String path, Module replacement) {
        if (replacement == null) {
            throw new IllegalArgumentException("replacement for '" + path + "' must not be null");
        }
        if (path == null || path.isEmpty()) {
            throw new IllegalArgumentException("cannot replace the root module (path '" + path + "'); replace a child by its dotted path");
        }
        int dot = path.lastIndexOf('.');
        Module parent = dot < 0 ? this : get(path.substring(0, dot));
        String leaf = dot < 0 ? path : path.substring(dot + 1);
        Module old = parent.children.get(leaf);
        if (old == null) {
            throw new IllegalArgumentException("no module at '" + path + "' to replace: '" + (dot < 0 ? "" : path.substring(0, dot))
                    + "' has no child '" + leaf + "' (children: " + parent.children.keySet() + ")");
        }
        parent.children.put(leaf, replacement);
        replacement.setTrainingRecursive(parent.training);
        return old;
    }

    public Module train() {
        setTrainingRecursive(true);
        return this;
    }

    public Module eval() {
        setTrainingRecursive(false);
        return this;
    }

    private void setTrainingRecursive(boolean t) {
        training = t;
        for (Module c : children.values()) {
            c.setTrainingRecursive(t);
        }
    }

    public boolean isTraining() {
        return training;
    }

    /** Makes every parameter in the tree non-trainable (drops their gradients). */
    public Module freeze() {
        for (Parameter p : parameters()) {
            p.setTrainable(false);
        }
        return this;
    }

    public Module unfreeze() {
        for (Parameter p : parameters()) {
            p.setTrainable(true);
        }
        return this;
    }

    public long numParameters() {
        long n = 0;
        for (Parameter p : parameters()) {
            n += p.length();
        }
        return n;
    }

    public long numTrainableParameters() {
        long n = 0;
        for (Parameter p : parameters()) {
            if (p.isTrainable()) {
                n += p.length();
            }
        }
        return n;
    }

    /** Parameter values by dotted name (live references, not copies). */
    public Map<String, INDArray> stateDict() {
        Map<String, INDArray> out = new LinkedHashMap<>();
        namedParameters().forEach((k, p) -> out.put(k, p.value()));
        return out;
    }

    /** What {@link #loadStateDict} did not match. */
    public record LoadResult(List<String> missingKeys, List<String> unexpectedKeys) {
    }

    /**
     * Copies values into the parameters by dotted name ({@link StateDictLoader}). Shapes must match
     * exactly (the error names the key, the expected and the found shape). In strict mode any
     * missing or unexpected key is an error naming them all; otherwise they are returned. Nothing
     * is changed when an error is thrown.
     */
    public LoadResult loadStateDict(Map<String, INDArray> state, boolean strict) {
        return StateDictLoader.into(namedParameters(), getClass().getSimpleName()).load(state, "state dict", strict);
    }

    /**
     * An independent copy of this module: fresh parameters holding copies of the values (trainable,
     * as a new module's are), the same training mode. {@code modules_to_save} keeps the original
     * frozen while such a copy trains. The nn layers with parameters override this; a module that
     * cannot be copied says so.
     *
     * @throws UnsupportedOperationException for modules without a copy of their own
     */
    public Module deepCopy() {
        throw new UnsupportedOperationException("cannot copy a " + getClass().getName() + ": only modules that override "
                + "Module.deepCopy() (Linear, Embedding, LayerNorm, RMSNorm, ...) can be copied");
    }

    /** For {@link #deepCopy} implementations: gives {@code copy} this module's training mode. */
    protected final <M extends Module> M withTrainingModeOf(M copy) {
        ((Module) copy).setTrainingRecursive(training);
        return copy;
    }

    /** One line per module, indented, with its parameters' shapes; for {@code peft4j info}. */
    public String treeString() {
        StringBuilder sb = new StringBuilder();
        appendTree(sb, getClass().getSimpleName(), "");
        return sb.toString();
    }

    private void appendTree(StringBuilder sb, String name, String indent) {
        sb.append(indent).append(name).append(": ").append(describe());
        for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
            sb.append(' ').append(e.getKey()).append(Arrays.toString(e.getValue().shape()));
            if (!e.getValue().isTrainable()) {
                sb.append("(frozen)");
            }
        }
        sb.append('\n');
        for (Map.Entry<String, Module> e : children.entrySet()) {
            e.getValue().appendTree(sb, e.getKey(), indent + "  ");
        }
    }

    /** A short description for {@link #treeString()}; the class name by default. */
    protected String describe() {
        return getClass().getSimpleName();
    }
}
