package org.peft4j.quant;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.lora.LoraLinear;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * QLoRA: LoRA adapters on a model whose linear layers are {@link QuantizedLinear}s.
 *
 * <p>{@code Peft.apply(quantizedModel, loraConfig)} already works (LoRA wraps quantized layers
 * like any other linear layer, {@code "all-linear"} included); the factors are the only trainable
 * tensors and their gradients flow through the dequantized frozen weights. The adapter folder that
 * {@code PeftModel.save} writes is an ordinary PEFT LoRA folder, loadable onto the quantized or
 * the fp32 base.
 *
 * <p>Merging needs the dense weight: {@code PeftModel.merge()}/{@code mergeAndUnload()} refuse a
 * quantized base layer with an {@link IllegalStateException}; {@link #mergeAndUnload} dequantizes
 * each wrapped quantized layer, merges, and (optionally) quantizes the merged weight again with the
 * layer's own format, logging the rounding that adds.
 */
public final class QLora {
    private static final Logger LOG = LoggerFactory.getLogger(QLora.class);

    private QLora() {
    }

    /**
     * {@code Peft.apply(model, config)} for a quantized model; warns when no adapter layer wraps a
     * quantized layer (the config targets only fp32 layers).
     */
    public static PeftModel apply(Module quantizedModel, PeftConfig config) {
        if (!Quantizer.isQuantized(quantizedModel)) {
            throw new IllegalArgumentException("the model has no quantized layer; quantize it first (Quantizer.quantize) "
                    + "or use Peft.apply for plain LoRA");
        }
        PeftModel pm = Peft.apply(quantizedModel, config);
        int wrapped = 0;
        for (Module m : pm.baseModel().namedModules().values()) {
            if (m instanceof LoraLinear ll && ll.baseLayer() instanceof QuantizedLinear) {
                wrapped++;
            }
        }
        if (wrapped == 0) {
            LOG.warn("no LoRA layer wraps a quantized layer: the adapter targets only full-precision layers");
        }
        return pm;
    }

    /** The rounding that re-quantizing merged weights added: max and RMS of |merged − requantized|. */
    public record MergeReport(int quantizedLayersMerged, boolean requantized, double maxAbsRoundingError,
                              double rmsRoundingError) {
    }

    /**
     * Merges the active adapter into the weights and returns the plain model: every LoRA layer
     * around a quantized layer is dequantized to fp32, merged, and replaced by the merged layer —
     * quantized again with its own format when {@code requantize} (which adds rounding; a warning
     * gives its size), or kept as an fp32 {@link Linear} otherwise. LoRA layers around fp32 layers
     * and modules-to-save are handled as {@code PeftModel.mergeAndUnload()} does. Layers are
     * processed one at a time, so at most one dense weight is resident. The PeftModel is unusable
     * afterwards.
     */
    public static Module mergeAndUnload(PeftModel model, boolean requantize) {
        return mergeAndUnloadWithReport(model, requantize).model();
    }

    /** {@link #mergeAndUnload} with the rounding report. */
    public record Result(Module model, MergeReport report) {
    }

    public static Result mergeAndUnloadWithReport(PeftModel model, boolean requantize) {
        Module base = model.baseModel();
        String active = model.activeAdapter();
        List<Map.Entry<String, Module>> layers = new ArrayList<>();
        for (Map.Entry<String, Module> e : base.namedModules().entrySet()) {
            if (e.getValue() instanceof LoraLinear ll && ll.baseLayer() instanceof QuantizedLinear) {
                layers.add(e);
            }
        }
        double maxErr = 0;
        double sumSq = 0;
        long count = 0;
        for (Map.Entry<String, Module> e : layers) {
            LoraLinear ll = (LoraLinear) e.getValue();
            QuantizedLinear q = (QuantizedLinear) ll.baseLayer();
            QuantConfig format = formatOf(q.quantizedWeight());
            Linear dense = q.dequantize();
            ll.replace("base_layer", dense);
            if (active != null && ll.adapterNames().contains(active)) {
                ll.merge(List.of(active));
            }
            Module replacement = dense;
            if (requantize) {
                QuantizedLinear rq = QuantizedLinear.quantize(dense, format);
                INDArray merged = dense.weight().value();
                INDArray back = rq.denseWeight();
                INDArray diff = merged.sub(back);
                maxErr = Math.max(maxErr, diff.amaxNumber().doubleValue());
                sumSq += diff.norm2Number().doubleValue() * diff.norm2Number().doubleValue();
                count += diff.length();
                replacement = rq;
            }
            base.replace(e.getKey(), replacement);
        }
        Module plain = model.mergeAndUnload();
        double rms = count == 0 ? 0 : Math.sqrt(sumSq / count);
        if (requantize && !layers.isEmpty()) {
            LOG.warn(String.format(Locale.ROOT, "merged the adapter into %d quantized layers and re-quantized them: "
                    + "re-quantization adds rounding (max |Δw| %.3g, rms %.3g), so outputs differ slightly from the "
                    + "unmerged adapter; keep the adapter separate or merge without re-quantization for exact outputs",
                    layers.size(), maxErr, rms));
        }
        return new Result(plain, new MergeReport(layers.size(), requantize, maxErr, rms));
    }

    /**
     * Replaces every {@link QuantizedLinear} of {@code model} by an fp32 {@link Linear} holding its
     * dequantized weight (transformers' {@code model.dequantize()}), in place; returns the model.
     */
    public static <M extends Module> M dequantize(M model) {
        List<String> paths = new ArrayList<>();
        for (Map.Entry<String, Module> e : model.namedModules().entrySet()) {
            if (e.getValue() instanceof QuantizedLinear) {
                paths.add(e.getKey());
            }
        }
        for (String p : paths) {
            if (p.isEmpty()) {
                throw new IllegalArgumentException("the model itself is a QuantizedLinear; call dequantize() on it");
            }
            model.replace(p, ((QuantizedLinear) model.get(p)).dequantize());
        }
        return model;
    }

    /** The format a quantized weight was made with, as a config (for re-quantization). */
    static QuantConfig formatOf(QuantizedTensor w) {
        QuantConfig.Builder b = QuantConfig.builder().type(w.type());
        if (w instanceof Quantized4bit q) {
            b.blockSize(q.blockSize()).doubleQuant(q.isDoubleQuant());
        } else if (w instanceof QuantizedInt8 q) {
            b.int8Threshold(q.threshold());
        }
        return b.build();
    }
}
