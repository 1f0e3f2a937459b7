package org.peft4j.quant;

import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.peft.AdapterLayer;
import org.peft4j.core.peft.ModulesToSaveWrapper;
import org.peft4j.core.peft.PeftModel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Replaces the linear layers of a loaded model by {@link QuantizedLinear}s, in place.
 *
 * <p>Quantize the base model before applying an adapter: {@code Quantizer.quantize(model, cfg)}
 * then {@code Peft.apply(model, loraConfig)} gives QLoRA. To avoid ever holding the full fp32
 * model, quantize while loading instead ({@link QuantizedModels#load(java.nio.file.Path, QuantConfig)}).
 */
public final class Quantizer {
    private static final Logger LOG = LoggerFactory.getLogger(Quantizer.class);

    private Quantizer() {
    }

    /** What a quantized model holds: quantized layers, their parameter count and storage. */
    public record Stats(int layers, long quantizedParameters, long quantizedBytes, long otherParameters) {
        /** Bytes per quantized parameter, from the actual buffers. */
        public double bytesPerParameter() {
            return quantizedParameters == 0 ? 0 : (double) quantizedBytes / quantizedParameters;
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%d quantized layers, %,d quantized parameters in %,d bytes (%.4f bytes/param), "
                    + "%,d other parameters", layers, quantizedParameters, quantizedBytes, bytesPerParameter(), otherParameters);
        }
    }

    /**
     * The paths of the {@link Linear} layers {@code config} selects, in tree order. Layers inside
     * adapter layers or modules-to-save wrappers are never selected (quantize before adding adapters).
     */
    public static List<String> targets(Module model, QuantConfig config) {
        List<String> out = new ArrayList<>();
        List<String> excluded = new ArrayList<>();
        for (Map.Entry<String, Module> e : model.namedModules().entrySet()) {
            Module m = e.getValue();
            if (m instanceof AdapterLayer || m instanceof ModulesToSaveWrapper) {
                excluded.add(e.getKey() + ".");
            }
        }
        outer:
        for (Map.Entry<String, Module> e : model.namedModules().entrySet()) {
            String path = e.getKey();
            if (!(e.getValue() instanceof Linear) || path.isEmpty()) {
                continue;
            }
            for (String x : excluded) {
                if (path.startsWith(x)) {
                    continue outer;
                }
            }
            if (config.selects(path)) {
                out.add(path);
            }
        }
        return out;
    }

    /**
     * Quantizes, in place, every linear layer of {@code model} that {@code config} selects and
     * returns the model. Bias parameters are kept (same objects, same trainable flag).
     *
     * @throws IllegalArgumentException if {@code model} is a PeftModel, or nothing matches a given target list
     */
    public static <M extends Module> M quantize(M model, QuantConfig config) {
        if (model instanceof PeftModel) {
            throw new IllegalArgumentException("quantize the base model before applying an adapter (got a PeftModel)");
        }
        List<String> targets = targets(model, config);
        if (targets.isEmpty() && config.targetModules() != null) {
            throw new IllegalArgumentException("target modules " + config.targetModules() + " matched no linear layer of "
                    + model.getClass().getSimpleName());
        }
        long params = 0;
        long bytes = 0;
        for (String path : targets) {
            Linear l = (Linear) model.get(path);
            QuantizedLinear q = QuantizedLinear.quantize(l, config);
            model.replace(path, q);
            params += q.quantizedWeight().numel();
            bytes += q.quantizedWeight().storageBytes();
        }
        LOG.info("quantized {} linear layers of {} to {} ({} parameters, {} bytes, {} bytes/param)", targets.size(),
                model.getClass().getSimpleName(), config, params, bytes,
                params == 0 ? 0 : String.format(Locale.ROOT, "%.4f", (double) bytes / params));
        return model;
    }

    /** The quantized layers of {@code model} and their storage. */
    public static Stats stats(Module model) {
        int layers = 0;
        long qp = 0;
        long qb = 0;
        for (Module m : model.namedModules().values()) {
            if (m instanceof QuantizedLinear q) {
                layers++;
                qp += q.quantizedWeight().numel();
                qb += q.quantizedWeight().storageBytes();
            }
        }
        return new Stats(layers, qp, qb, model.numParameters());
    }

    /** True if {@code model} holds at least one quantized layer. */
    public static boolean isQuantized(Module model) {
        for (Module m : model.namedModules().values()) {
            if (m instanceof QuantizedLinear) {
                return true;
            }
        }
        return false;
    }
}
