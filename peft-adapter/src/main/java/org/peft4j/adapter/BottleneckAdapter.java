package org.peft4j.adapter;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Activation;
import org.peft4j.core.nn.Dropout;
import org.peft4j.core.nn.LayerNorm;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

/**
 * One bottleneck adapter at one place (AdapterHub's {@code Adapter} / {@code ParallelAdapter} in
 * {@code methods/modeling.py}), with its children named as there so the state-dict keys are
 * AdapterHub's: {@code adapter_down} = Sequential[{@code adapter_norm_before}?, Linear
 * {@code [d, hidden]}, activation] (indices 0.. in that order), {@code adapter_up} Linear
 * {@code [hidden, d]}, optionally {@code adapter_norm_after} and a learned {@code scaling}.
 *
 * <p>Given the sub-layer output {@code h [batch, seq, hidden]}, the stream before it {@code r}
 * and the block's norm (null in pre-norm blocks), {@link #forward} returns the stream after the
 * sub-layer:
 * <pre>
 * sequential  pre:   res = h (residual_before_ln true); x = original_ln_before ? norm(h + r) (h + r without a norm) : h;
 *                    res = x (residual_before_ln false), res = h + r (post_add)
 *             body:  o = dropout(up(act(down(x))) · scaling); o = [res +] o; o = ln_after ? LN(o); o += res (if not before LN)
 *             post:  original_ln_after ? norm(o + r) (o + r without a norm) : o
 * parallel    body:  o = dropout(up(act(down(r))) · scaling), ln_after ? LN(o)
 *             post:  o + h, then original_ln_after ? norm(o + h + r) ...
 * </pre>
 */
public final class BottleneckAdapter extends Module {
    private final int hidden;
    private final BnConfig config;
    private final double fixedScaling;
    private final boolean learnedScaling;

    /** A container whose children are numbered like torch's {@code nn.Sequential}. */
    static final class Sequential extends Module implements UnaryModule {
        Sequential(Module... parts) {
            for (int i = 0; i < parts.length; i++) {
                registerModule(Integer.toString(i), parts[i]);
            }
        }

        @Override
        public Tensor forward(Tensor x) {
            for (Module m : children().values()) {
                x = ((UnaryModule) m).forward(x);
            }
            return x;
        }

        @Override
        protected String describe() {
            return "Sequential";
        }
    }

    BottleneckAdapter(BnConfig c, int hidden, int layer, long seed) {
        this.config = c;
        this.hidden = hidden;
        int d = c.bottleneckSize(hidden, layer);
        Rng rng = new Rng(seed);
        Linear down = linear(d, hidden, c.initWeights(), true, rng);
        Linear up = linear(hidden, d, c.initWeights(), false, rng);
        Module act = new Activation(c.nonLinearity());
        registerModule("adapter_down", c.lnBefore()
                ? new Sequential(new LayerNorm(hidden, 1e-5), down, act)
                : new Sequential(down, act));
        registerModule("adapter_up", up);
        if (c.lnAfter()) {
            registerModule("adapter_norm_after", new LayerNorm(hidden, 1e-5));
        }
        registerModule("dropout", new Dropout(c.dropout(), rng.fork()));
        Object s = c.scaling();
        if (s instanceof Number n) {
            fixedScaling = n.doubleValue();
            learnedScaling = false;
        } else {
            fixedScaling = 1.0;
            learnedScaling = true;
            registerParameter("scaling", new Parameter(Nd4j.ones(DataType.FLOAT, "channel".equals(s) ? hidden : 1)));
        }
    }

    /**
     * AdapterHub's initialisations: "bert" N(0, 0.02) weights and zero biases; "mam_adapter"
     * Kaiming-uniform (a = √5: U(±1/√in)) down weight, zero up weight and biases (an exact
     * identity); "houlsby" N(0, 0.01) truncated to ±0.02 for both weights, zero biases.
     */
    private static Linear linear(int out, int in, String init, boolean isDown, Rng rng) {
        INDArray w = Nd4j.create(DataType.FLOAT, out, in);
        for (long i = 0; i < w.length(); i++) {
            double v = switch (init) {
                case "mam_adapter" -> isDown ? (2 * rng.nextDouble() - 1) / Math.sqrt(in) : 0.0;
                case "houlsby" -> {
                    double g;
                    do {
                        g = 0.01 * rng.nextGaussian();
                    } while (Math.abs(g) > 0.02);
                    yield g;
                }
                default -> 0.02 * rng.nextGaussian();
            };
            w.putScalar(i, v);
        }
        return new Linear(w, Nd4j.zeros(DataType.FLOAT, out), false);
    }

    public BnConfig config() {
        return config;
    }

    /** The width of the stream it adapts. */
    public int hiddenSize() {
        return hidden;
    }

    /** AdapterHub's adapter {@code forward}: {@code up(act(down(x)))·scaling} with the residual {@code res} (sequential). */
    Tensor body(Tensor x, Tensor res) {
        return bodyFromUp(up(x), res);
    }

    /** {@code up(act(down(x)))·scaling}, before the adapter's dropout: what an AdapterFusion attends over. */
    Tensor up(Tensor x) {
        Tensor up = ((UnaryModule) child("adapter_up")).forward(((UnaryModule) child("adapter_down")).forward(x));
        return learnedScaling ? Ops.mul(up, parameter("scaling")) : (fixedScaling == 1.0 ? up : Ops.mul(up, fixedScaling));
    }

    /** The rest of {@link #body} given {@link #up}. */
    Tensor bodyFromUp(Tensor up, Tensor res) {
        Tensor o = ((UnaryModule) child("dropout")).forward(up);
        if (config.isParallel()) {
            return config.lnAfter() ? ((UnaryModule) child("adapter_norm_after")).forward(o) : o;
        }
        if (config.adapterResidualBeforeLn()) {
            o = Ops.add(o, res);
        }
        if (config.lnAfter()) {
            o = ((UnaryModule) child("adapter_norm_after")).forward(o);
        }
        if (!config.adapterResidualBeforeLn()) {
            o = Ops.add(o, res);
        }
        return o;
    }

    /** The stream after the sub-layer: see the class comment. {@code h}, {@code r} {@code [batch, seq, hidden]}. */
    public Tensor forward(Tensor h, Tensor r, UnaryModule norm) {
        Tensor[] xr = pre(h, r, norm);
        return post(body(xr[0], xr[1]), h, r, norm);
    }

    /**
     * AdapterHub's {@code pre_forward}: the adapter input and the residual it adds back,
     * {@code {x, res}}; a parallel adapter reads the sub-layer's input {@code r}.
     */
    Tensor[] pre(Tensor h, Tensor r, UnaryModule norm) {
        if (config.isParallel()) {
            return new Tensor[]{r, r};
        }
        Object rbl = config.residualBeforeLn();
        Tensor res = Boolean.TRUE.equals(rbl) ? h : null;
        Tensor x = h;
        if (config.originalLnBefore()) {
            x = Ops.add(h, r);
            if ("post_add".equals(rbl)) {
                res = x;
            }
            if (norm != null) {
                x = norm.forward(x);
            }
        }
        if (Boolean.FALSE.equals(rbl)) {
            res = x;
        }
        if (res == null) {          // "post_add" without original_ln_before: the sum was never formed
            res = Ops.add(h, r);
        }
        return new Tensor[]{x, res};
    }

    /**
     * The fusion query AdapterHub's {@code pre_forward} returns with a fusion config: the sub-layer
     * input {@code r} for a parallel adapter; otherwise the sub-layer output before the original
     * LayerNorm ({@code query_before_ln}) or the adapter input after it ({@code x} of {@link #pre}).
     */
    Tensor query(Tensor h, Tensor r, Tensor x, boolean queryBeforeLn) {
        if (config.isParallel()) {
            return r;
        }
        return queryBeforeLn ? h : x;
    }

    /**
     * AdapterHub's {@code post_forward}: {@code o} from {@link #body}, {@code hIn} the sub-layer
     * output the block gave, {@code r} the stream before the sub-layer.
     */
    Tensor post(Tensor o, Tensor hIn, Tensor r, UnaryModule norm) {
        if (config.isParallel()) {
            o = Ops.add(o, hIn);
        }
        if (!config.originalLnAfter()) {
            return o;
        }
        return norm != null ? norm.forward(Ops.add(o, r)) : Ops.add(o, r);
    }

    @Override
    protected String describe() {
        return "BottleneckAdapter(" + (config.isParallel() ? "parallel, " : "") + config.nonLinearity() + ")";
    }
}
