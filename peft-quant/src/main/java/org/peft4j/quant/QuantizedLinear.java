package org.peft4j.quant;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.LinearLayer;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;

/**
 * A frozen linear layer {@code y = x·Wᵀ + b} whose weight {@code W [out, in]} is stored quantized
 * (NF4 / FP4 / int8, see {@link Quantized4bit} and {@link QuantizedInt8}): only the packed codes
 * and scales are kept, plus an optional fp32 {@code bias} parameter.
 *
 * <p>The forward dequantizes W into a reusable per-shape scratch buffer ({@link DequantScratch})
 * and runs one GEMM; the backward dequantizes again and computes only the input gradient
 * {@code dx = dy·W} (and the bias gradient if the bias trains): the quantized weight itself never
 * trains and the dense weight is never resident between calls. So LoRA (QLoRA) on top of this
 * layer gets exact gradients through the dequantized weight.
 *
 * <p>As a {@link LinearLayer} it counts for {@code target_modules = "all-linear"} and any PEFT
 * method that wraps linear layers wraps it (LoRA on it is QLoRA); merging an adapter into it is
 * refused ({@link #setDenseWeight}) — use {@link QLora#mergeAndUnload} which dequantizes first.
 */
public final class QuantizedLinear extends Module implements LinearLayer {
    private final int inFeatures;
    private final int outFeatures;
    private final QuantizedTensor weight;

    /**
     * @param weight the quantized {@code [out, in]} weight
     * @param bias   {@code [out]} or null; kept as the layer's {@code bias} parameter (same object)
     */
    public QuantizedLinear(QuantizedTensor weight, Parameter bias) {
        long[] s = weight.shape();
        if (s.length != 2 || s[0] <= 0 || s[1] <= 0 || s[0] > Integer.MAX_VALUE || s[1] > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("a quantized linear weight must be [out, in], got " + Arrays.toString(s));
        }
        this.outFeatures = (int) s[0];
        this.inFeatures = (int) s[1];
        this.weight = weight;
        if (bias != null) {
            if (bias.rank() != 1 || bias.size(0) != outFeatures) {
                throw new IllegalArgumentException("bias must be [" + outFeatures + "], got " + Arrays.toString(bias.shape()));
            }
            registerParameter("bias", bias);
        }
    }

    /**
     * Quantizes a {@link Linear}'s weight per {@code config} (a GPT-2 Conv1D {@code [in, out]}
     * weight is transposed first); the bias parameter is kept as is.
     */
    public static QuantizedLinear quantize(Linear linear, QuantConfig config) {
        INDArray w = linear.weight().value();
        INDArray outIn = linear.isFanInFanOut() ? w.transpose() : w;
        return new QuantizedLinear(quantizeWeight(outIn, config), linear.bias());
    }

    /** Quantizes a dense {@code [out, in]} weight per {@code config}. */
    public static QuantizedTensor quantizeWeight(INDArray outIn, QuantConfig config) {
        if (outIn.rank() != 2) {
            throw new IllegalArgumentException("expected a 2-D [out, in] weight, got " + Arrays.toString(outIn.shape()));
        }
        long n = outIn.length();
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("weight " + Arrays.toString(outIn.shape()) + " is too large to quantize in one piece");
        }
        float[] values = NativeArrays.floats(outIn);
        return quantizeWeight(values, outIn.size(0), outIn.size(1), config);
    }

    /** Quantizes the row-major {@code [out, in]} values per {@code config}. */
    public static QuantizedTensor quantizeWeight(float[] values, long out, long in, QuantConfig config) {
        if (config.type() == QuantType.INT8) {
            return QuantizedInt8.quantize(values, (int) out, (int) in, config.int8Threshold());
        }
        return Quantized4bit.quantize(values, new long[]{out, in}, config.type(), config.blockSize(), config.doubleQuant());
    }

    @Override
    public int inFeatures() {
        return inFeatures;
    }

    @Override
    public int outFeatures() {
        return outFeatures;
    }

    /** The quantized weight. */
    public QuantizedTensor quantizedWeight() {
        return weight;
    }

    @Override
    public Parameter bias() {
        return parameter("bias");
    }

    /** Bytes of the quantized weight (codes, scales, tables) plus the fp32 bias. */
    public long storageBytes() {
        Parameter b = bias();
        return weight.storageBytes() + (b == null ? 0 : 4L * b.length());
    }

    @Override
    public Tensor forward(Tensor x) {
        INDArray xv = x.value();
        if (xv.rank() < 1 || xv.size(xv.rank() - 1) != inFeatures) {
            throw new IllegalArgumentException(describe() + " got input " + Arrays.toString(xv.shape())
                    + "; last axis must be " + inFeatures);
        }
        DataType dt = xv.dataType();
        if (dt != DataType.FLOAT && dt != DataType.DOUBLE) {
            throw new IllegalArgumentException(describe() + " computes in FLOAT (or DOUBLE for checks), got " + dt);
        }
        final Parameter bias = bias();
        final long rows = xv.length() / inFeatures;
        final long[] xShape = xv.shape();
        INDArray x2 = xv.reshape('c', rows, inFeatures);                 // [N, in]
        INDArray w = DequantScratch.dequantize(weight, dt);              // [out, in], scratch
        INDArray y2 = Nd4j.createUninitialized(dt, rows, outFeatures);   // [N, out]
        Nd4j.gemm(x2, w, y2, false, true, 1.0, 0.0);                     // y = x·Wᵀ
        if (bias != null) {
            y2.addiRowVector(bias.value().castTo(dt));
        }
        long[] yShape = xShape.clone();
        yShape[yShape.length - 1] = outFeatures;
        return Tensor.fromOp(y2.reshape('c', yShape), g -> {
            INDArray g2 = g.reshape('c', rows, outFeatures);             // [N, out]
            if (x.requiresGrad()) {
                // the scratch may hold another layer's weight by now: dequantize again
                INDArray wb = DequantScratch.dequantize(weight, g2.dataType());
                INDArray dx = Nd4j.createUninitialized(g2.dataType(), rows, inFeatures);
                Nd4j.gemm(g2, wb, dx, false, false, 1.0, 0.0);           // dx = dy·W
                x.accumulateGrad(dx.reshape('c', xShape));
            }
            if (bias != null && bias.requiresGrad()) {
                bias.accumulateGrad(g2.sum(0).castTo(bias.value().dataType()));
            }
        }, x, bias);
    }

    /** A fresh dense fp32 {@code [out, in]} copy of the weight (for merging, DoRA, inspection). */
    @Override
    public INDArray denseWeight() {
        return DequantScratch.dense(weight);
    }

    /**
     * Always refused: a quantized weight cannot take a dense update in place (merging LoRA,
     * PiSSA/OLoRA residuals). Dequantize first ({@link #dequantize()}, {@link QLora#mergeAndUnload}).
     */
    @Override
    public void setDenseWeight(INDArray w) {
        throw new IllegalStateException("cannot write a dense weight into the quantized layer " + describe()
                + ": merging a LoRA adapter (or a PiSSA/OLoRA initialization) into a " + weight.type().id()
                + " weight needs dequantization first; use QLora.mergeAndUnload(peftModel, requantize) or "
                + "QuantizedLinear.dequantize()");
    }

    /** An fp32 {@link Linear} with the dequantized weight and a copy of the bias (frozen like this layer's). */
    public Linear dequantize() {
        Parameter b = bias();
        Linear l = new Linear(denseWeight(), b == null ? null : b.value().dup(), false);
        l.freeze();
        if (b != null && b.isTrainable()) {
            l.bias().setTrainable(true);
        }
        return l;
    }

    @Override
    protected String describe() {
        String detail = weight instanceof Quantized4bit q
                ? ", blocksize=" + q.blockSize() + (q.isDoubleQuant() ? ", double-quant" : "") : "";
        return "QuantizedLinear(" + inFeatures + " -> " + outFeatures + ", " + weight.type().id() + detail
                + (bias() != null ? ", bias" : "") + ")";
    }
}
