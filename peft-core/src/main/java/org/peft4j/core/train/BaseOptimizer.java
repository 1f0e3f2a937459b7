package org.peft4j.core.train;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.nn.Parameter;

import java.util.Arrays;
import java.util.Collections;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * What AdamW and SGD share: the validated parameter map, the learning rate, the weight-decay
 * groups, and one scratch buffer per data type that every update reuses (so a step allocates
 * nothing once the state exists).
 *
 * <p>Weight-decay groups are derived from the parameters themselves: tensors of rank ≤ 1
 * (biases, LayerNorm/RMSNorm weights, scalars) get no decay, everything else gets the default
 * rate. Named overrides (regular expressions that must match the whole name, first match
 * wins) take precedence over that rule.
 */
abstract class BaseOptimizer implements Optimizer {

    private final Map<String, Parameter> params;
    private final Map<String, Double> weightDecay;
    private double lr;
    private final Map<DataType, INDArray> scratch = new EnumMap<>(DataType.class);

    BaseOptimizer(Map<String, Parameter> params, double lr, double defaultWeightDecay,
                  Map<String, Double> overrides) {
        if (params == null || params.isEmpty()) {
            throw new IllegalArgumentException("optimizer needs at least one parameter");
        }
        checkLr(lr);
        if (!(defaultWeightDecay >= 0) || Double.isInfinite(defaultWeightDecay)) {
            throw new IllegalArgumentException("weight decay must be finite and >= 0: " + defaultWeightDecay);
        }
        Map<Pattern, Double> patterns = new LinkedHashMap<>();
        overrides.forEach((regex, wd) -> {
            if (wd == null || !(wd >= 0) || Double.isInfinite(wd)) {
                throw new IllegalArgumentException("weight decay override for '" + regex + "' must be finite and >= 0: " + wd);
            }
            patterns.put(Pattern.compile(regex), wd);
        });
        Map<String, Parameter> copy = new LinkedHashMap<>();
        Map<String, Double> decay = new LinkedHashMap<>();
        for (Map.Entry<String, Parameter> e : params.entrySet()) {
            String name = e.getKey();
            Parameter p = e.getValue();
            if (name == null || name.isEmpty()) {
                throw new IllegalArgumentException("parameter names must not be empty");
            }
            if (p == null) {
                throw new IllegalArgumentException("parameter '" + name + "' is null");
            }
            if (!p.isTrainable()) {
                throw new IllegalArgumentException("parameter '" + name + "' is frozen (trainable = false); "
                        + "optimizers accept only trainable parameters, pass module.namedTrainableParameters()");
            }
            DataType t = p.value().dataType();
            if (t != DataType.FLOAT && t != DataType.DOUBLE) {
                throw new IllegalArgumentException("parameter '" + name + "' has data type " + t + "; expected FLOAT or DOUBLE");
            }
            copy.put(name, p);
            double wd = p.rank() <= 1 ? 0.0 : defaultWeightDecay;
            for (Map.Entry<Pattern, Double> o : patterns.entrySet()) {
                if (o.getKey().matcher(name).matches()) {
                    wd = o.getValue();
                    break;
                }
            }
            decay.put(name, wd);
        }
        this.params = Collections.unmodifiableMap(copy);
        this.weightDecay = Collections.unmodifiableMap(decay);
        this.lr = lr;
    }

    private static void checkLr(double lr) {
        if (!(lr >= 0) || Double.isInfinite(lr)) {
            throw new IllegalArgumentException("learning rate must be finite and >= 0: " + lr);
        }
    }

    @Override
    public final Map<String, Parameter> parameters() {
        return params;
    }

    @Override
    public final double weightDecayFor(String name) {
        Double wd = weightDecay.get(name);
        if (wd == null) {
            throw new IllegalArgumentException("no parameter '" + name + "' in this optimizer");
        }
        return wd;
    }

    @Override
    public final double learningRate() {
        return lr;
    }

    @Override
    public final void setLearningRate(double lr) {
        checkLr(lr);
        this.lr = lr;
    }

    @Override
    public final void zeroGrad() {
        for (Parameter p : params.values()) {
            p.zeroGrad();
        }
    }

    /** The gradient of {@code p} checked against its value's shape and type, or null when there is none. */
    static INDArray gradOf(String name, Parameter p) {
        INDArray g = p.grad();
        if (g == null) {
            return null;
        }
        if (!Arrays.equals(g.shape(), p.shape())) {
            throw new IllegalStateException("gradient of '" + name + "' has shape " + Arrays.toString(g.shape())
                    + ", parameter has " + Arrays.toString(p.shape()));
        }
        if (g.dataType() != p.value().dataType()) {
            g = g.castTo(p.value().dataType());
        }
        return g;
    }

    /**
     * A c-order scratch array shaped like {@code like}, a view into a shared per-type buffer
     * that grows to the largest parameter. Its content is garbage; it is only valid until the
     * next call.
     */
    final INDArray scratchLike(INDArray like) {
        DataType t = like.dataType();
        long n = like.length();
        INDArray buf = scratch.get(t);
        if (buf == null || buf.length() < n) {
            long max = n;
            for (Parameter p : params.values()) {
                max = Math.max(max, p.length());
            }
            buf = Nd4j.createUninitialized(t, max);
            scratch.put(t, buf);
        }
        INDArray flat = buf.length() == n ? buf : buf.get(NDArrayIndex.interval(0, n));
        // like.shape() is a long[], so this is reshape(char, long[]) (also for rank 0: shape [])
        return flat.reshape('c', like.shape());
    }

    /** A fresh zero array of the parameter's shape and type, in c order. */
    static INDArray zerosLike(Parameter p) {
        return Nd4j.zeros(p.value().dataType(), p.shape());
    }

    /**
     * The tensors of a saved state by parameter name, then slot (in the saved order), after
     * checking that the state is of this optimizer's {@code type} and that every key is
     * {@code <parameter>.<slot>} with a known parameter, one of {@code slots} and the parameter's
     * shape. Each tensor is a c-order copy widened to its parameter's type. Whether a parameter
     * has all the slots it needs is the caller's check.
     */
    final Map<String, Map<String, INDArray>> restoreSlots(OptimizerState saved, String type, Set<String> slots) {
        if (!type.equals(saved.type())) {
            throw new IllegalArgumentException("optimizer state is of type '" + saved.type() + "', expected '" + type + "'");
        }
        Map<String, Map<String, INDArray>> restored = new LinkedHashMap<>();
        for (Map.Entry<String, INDArray> e : saved.tensors().entrySet()) {
            String[] ns = splitKey(e.getKey(), slots);
            restored.computeIfAbsent(ns[0], k -> new LinkedHashMap<>()).put(ns[1], restoreTensor(e.getKey(), ns[0], e.getValue()));
        }
        return restored;
    }

    /** Splits {@code <param>.<slot>} into the parameter name and the slot, checking both. */
    private String[] splitKey(String key, Set<String> slots) {
        int dot = key.lastIndexOf('.');
        if (dot <= 0) {
            throw new IllegalArgumentException("optimizer state key '" + key + "' is not <parameter>.<slot>");
        }
        String name = key.substring(0, dot);
        String slot = key.substring(dot + 1);
        if (!params.containsKey(name)) {
            throw new IllegalArgumentException("optimizer state key '" + key + "' names unknown parameter '" + name + "'");
        }
        if (!slots.contains(slot)) {
            throw new IllegalArgumentException("optimizer state key '" + key + "' has unknown slot '" + slot
                    + "' (expected one of " + slots + ")");
        }
        return new String[]{name, slot};
    }

    /** A c-order copy of a saved state tensor, checked against the parameter's shape and widened to its type. */
    private INDArray restoreTensor(String key, String name, INDArray saved) {
        Parameter p = params.get(name);
        if (!Arrays.equals(saved.shape(), p.shape())) {
            throw new IllegalArgumentException("optimizer state '" + key + "' has shape " + Arrays.toString(saved.shape())
                    + ", parameter '" + name + "' has " + Arrays.toString(p.shape()));
        }
        INDArray c = saved.dataType() == p.value().dataType() ? saved.dup('c') : saved.castTo(p.value().dataType()).dup('c');
        return c;
    }
}
