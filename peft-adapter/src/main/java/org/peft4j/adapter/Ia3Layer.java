package org.peft4j.adapter;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.LinearLayer;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.peft.BaseAdapterLayer;
import org.peft4j.core.peft.MixedBatch;
import org.peft4j.core.peft.ParameterDict;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;

import java.util.Map;

/**
 * PEFT's IA3 {@code Linear}: a learned vector {@code l} per adapter rescales one side of a linear
 * layer {@code y = x·Wᵀ + b} ({@link LinearLayer}: fp32, GPT-2 Conv1D or quantized).
 * <ul>
 *   <li>feed-forward layer: {@code l [1, in]} scales the input, {@code y = (x ⊙ l)·Wᵀ + b};</li>
 *   <li>any other layer: {@code l [out, 1]} scales the output, bias included, {@code y = (x·Wᵀ + b) ⊙ lᵀ}.</li>
 * </ul>
 * Several active adapters multiply. Merging folds {@code l} into W's columns (feed-forward) or
 * W's rows and the bias; the exact previous weight and bias are kept so unmerging restores them
 * bit for bit (PEFT divides again, which leaves rounding residue).
 */
public final class Ia3Layer extends BaseAdapterLayer implements UnaryModule {
    private final boolean feedforward;

    Ia3Layer(Module base, boolean feedforward) {
        super("base_layer", base);
        if (!(base instanceof LinearLayer)) {
            throw new IllegalArgumentException("IA3 wraps linear layers, not " + base.getClass().getSimpleName());
        }
        this.feedforward = feedforward;
        registerModule("ia3_l", new ParameterDict());
    }

    public boolean isFeedforward() {
        return feedforward;
    }

    private LinearLayer linear() {
        return (LinearLayer) baseLayer();
    }

    /** The vector of {@code adapter}: {@code [1, in]} (feed-forward) or {@code [out, 1]}. */
    public Parameter ia3(String adapter) {
        requireAdapter(adapter);
        return child("ia3_l", ParameterDict.class).getParameter(adapter);
    }

    void addAdapter(String adapter, boolean initOnes, long seed) {
        LinearLayer lin = linear();
        long[] shape = feedforward ? new long[]{1, lin.inFeatures()} : new long[]{lin.outFeatures(), 1};
        INDArray v;
        if (initOnes) {
            v = Nd4j.ones(lin.weightDataType(), shape);
        } else {
            // PEFT's init_ia3_weights=False draws torch.randn; any non-trivial values serve (tests, debugging)
            org.peft4j.core.tensor.Rng rng = new org.peft4j.core.tensor.Rng(seed);
            v = Nd4j.create(lin.weightDataType(), shape);
            for (long i = 0; i < v.length(); i++) {
                v.putScalar(i, rng.nextGaussian());
            }
        }
        registerAdapter(adapter);
        child("ia3_l", ParameterDict.class).put(adapter, new Parameter(v));
    }

    @Override
    protected void removeAdapterState(String adapter) {
        replace("ia3_l", child("ia3_l", ParameterDict.class).without(adapter));
    }

    @Override
    public Map<String, Parameter> adapterParameters(String adapter) {
        return hasAdapter(adapter) ? Map.of("ia3_l." + adapter, ia3(adapter)) : Map.of();
    }

    @Override
    public Map<String, Parameter> savedTensors(String adapter) {
        return Map.of("ia3_l", ia3(adapter));
    }

    /** {@code l} as a flat {@code [n]} tensor (differentiable view of the parameter). */
    private Tensor flat(String adapter) {
        Parameter p = ia3(adapter);
        return Ops.reshape(p, p.value().length());
    }

    @Override
    public Tensor forward(Tensor x) {
        UnaryModule base = (UnaryModule) baseLayer();
        if (feedforward && adaptersEnabled() && MixedBatch.current() == null && !isMerged()) {
            // the usual path, as PEFT: scale the input [..., in] by every active adapter's l, then the base layer
            Tensor scaled = x;
            for (String a : activeAdapters()) {
                if (hasAdapter(a)) {
                    scaled = Ops.mul(scaled, flat(a));
                }
            }
            return base.forward(scaled);
        }
        return adaptedForward(() -> base.forward(x), () -> x.size(0), (y, a, rows) -> {
            if (!feedforward) {
                Tensor l = flat(a);                                     // [out], broadcast over [..., out]
                return Ops.mul(y, rows == null ? l : rowSelect(Ops.add(l, -1.0), rows, y.size(0), y.rank(), true));
            }
            // feed-forward inside a mixed batch: W(x ⊙ l) + b = y + W(x ⊙ (l − 1)), only on the adapter's rows
            Tensor d = Ops.mul(x, rowSelect(Ops.add(flat(a), -1.0), rows, x.size(0), x.rank(), false));
            return Ops.add(y, Ops.linear(d, Tensor.constant(linear().denseWeight()), null));
        });
    }

    /**
     * {@code lMinus1 [n]} restricted to the batch rows {@code rows}: {@code [leading, 1, ..., n]} equal to
     * {@code lMinus1} on those rows and 0 elsewhere, plus 1 everywhere when {@code plusOne}.
     */
    private static Tensor rowSelect(Tensor lMinus1, int[] rows, long leading, int rank, boolean plusOne) {
        long n = lMinus1.value().length();
        long[] maskShape = new long[rank];
        java.util.Arrays.fill(maskShape, 1);
        maskShape[0] = leading;
        INDArray mask = Nd4j.zeros(lMinus1.value().dataType(), maskShape);
        for (int r : rows) {
            mask.putScalar(r, 1.0);
        }
        long[] lShape = new long[rank];
        java.util.Arrays.fill(lShape, 1);
        lShape[rank - 1] = n;
        Tensor t = Ops.mul(Ops.reshape(lMinus1, lShape), Tensor.constant(mask));
        return plusOne ? Ops.add(t, 1.0) : t;
    }

    // ---- merging -------------------------------------------------------------------------------

    @Override
    protected INDArray mergeAdapter(String adapter) {
        LinearLayer lin = linear();
        INDArray w = lin.denseWeight();                               // [out, in]
        INDArray l = ia3(adapter).value().castTo(w.dataType());
        // previous state: [out, in] weight, plus the bias as a last column when this merge changes it
        Parameter bias = lin.bias();
        boolean scalesBias = !feedforward && bias != null;
        INDArray previous = scalesBias
                ? Nd4j.hstack(w.dup('c'), bias.value().castTo(w.dataType()).reshape(w.size(0), 1))
                : w.dup('c');
        INDArray merged = feedforward
                ? w.mulRowVector(l.reshape(1, w.size(1)))              // columns × l [1, in]
                : w.mulColumnVector(l.reshape(w.size(0), 1));          // rows × l [out, 1]
        lin.setDenseWeight(merged);
        if (scalesBias) {
            INDArray b = bias.value();
            b.assign(b.mul(l.reshape(b.shape()).castTo(b.dataType())));
        }
        return previous;
    }

    @Override
    protected void restoreMerged(String adapter, INDArray previous) {
        LinearLayer lin = linear();
        long in = lin.inFeatures();
        Parameter bias = lin.bias();
        if (previous.size(1) == in + 1) {
            lin.setDenseWeight(previous.get(org.nd4j.linalg.indexing.NDArrayIndex.all(),
                    org.nd4j.linalg.indexing.NDArrayIndex.interval(0, in)).dup('c'));
            bias.value().assign(previous.getColumn(in).reshape(bias.value().shape()).castTo(bias.value().dataType()));
        } else {
            lin.setDenseWeight(previous);
        }
    }

    @Override
    protected String describe() {
        return "Ia3Layer(" + (feedforward ? "feedforward, " : "") + describeAdapters() + ")";
    }
}
