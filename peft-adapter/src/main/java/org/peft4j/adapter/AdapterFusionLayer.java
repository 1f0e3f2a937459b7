package org.peft4j.adapter;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Dropout;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.List;

/**
 * One AdapterFusion layer at one place (AdapterHub's {@code BertFusion}, {@code methods/modeling.py}):
 * attention of the query over the fused adapters' up-projections. Children as there, so keys read
 * {@code adapter_fusion_layer.<fusion>.query.weight}: {@code query}, {@code key} ({@code Linear(h, h)}
 * with bias), {@code value} ({@code Linear(h, h)} without bias), each only when the config turns it on;
 * N(0, 0.02) weights and zero biases ({@code init_bert_weights}), the value matrix identity with
 * 1e-6 elsewhere when {@code value_initialized}.
 *
 * <p>{@code forward(query [b, s, h], ups [n × [b, s, h]], residual [b, s, h])}:
 * <pre>
 * V = stack(ups) (+ residual if residual_before)          [b, s, n, h]
 * scores = (query? Q(query) : query) · (key? K(V) : V)   [b, s, n]   (V before its value projection)
 * p = softmax(dropout(scores) / T)                        T = 1, or 50 falling by 0.05 per call to 1 (temperature)
 * ctx = Σ p · (value and value_before_softmax ? Vw(V) : V), then Vw(ctx) if value after softmax
 * ctx + residual (unless residual_before)
 * </pre>
 */
public final class AdapterFusionLayer extends Module {
    private final FusionConfig config;
    private final int hidden;
    private double t;
    private final double reduction;

    AdapterFusionLayer(FusionConfig config, int hidden, double dropoutProb, long seed) {
        this.config = config;
        this.hidden = hidden;
        Rng rng = new Rng(seed);
        if (!config.query() && !config.key() && !config.value()) {
            registerModule("dense", linear(1, hidden, true, rng));
        }
        if (config.query()) {
            registerModule("query", linear(hidden, hidden, true, rng));
        }
        if (config.key()) {
            registerModule("key", linear(hidden, hidden, true, rng));
        }
        if (config.value()) {
            Linear v = linear(hidden, hidden, false, rng);
            if (config.valueInitialized()) {
                INDArray w = Nd4j.valueArrayOf(new long[]{hidden, hidden}, 1e-6f, DataType.FLOAT);
                for (int i = 0; i < hidden; i++) {
                    w.putScalar(i, i, 1.0);
                }
                v = new Linear(w, null, false);
            }
            registerModule("value", v);
        }
        registerModule("dropout", new Dropout(dropoutProb, rng.fork()));
        this.t = config.temperature() ? 50.0 : 1.0;
        this.reduction = t / 1000.0;
    }

    private static Linear linear(int out, int in, boolean bias, Rng rng) {
        INDArray w = Nd4j.create(DataType.FLOAT, out, in);
        for (long i = 0; i < w.length(); i++) {
            w.putScalar(i, 0.02 * rng.nextGaussian());
        }
        return new Linear(w, bias ? Nd4j.zeros(DataType.FLOAT, out) : null, false);
    }

    public FusionConfig config() {
        return config;
    }

    public int hiddenSize() {
        return hidden;
    }

    private Tensor apply(String child, Tensor x) {
        return ((UnaryModule) child(child)).forward(x);
    }

    /** The fused stream before the last adapter's post_forward; see the class comment. */
    Tensor forward(Tensor query, List<Tensor> ups, Tensor residual) {
        long b = residual.size(0), s = residual.size(1);
        int n = ups.size();
        Tensor[] parts = new Tensor[n];
        for (int i = 0; i < n; i++) {
            parts[i] = Ops.reshape(ups.get(i), b, s, 1, hidden);
        }
        Tensor value = Ops.concat(2, parts);                              // [b, s, n, h]
        if (config.residualBefore()) {
            value = Ops.add(value, Ops.reshape(residual, b, s, 1, hidden));
        }
        Tensor q = config.query() ? apply("query", query) : query;
        Tensor k = config.key() ? apply("key", value) : value;
        Tensor v = config.value() && config.valueBeforeSoftmax() ? apply("value", value) : value;
        Tensor scores = Ops.sum(Ops.mul(Ops.reshape(q, b, s, 1, hidden), k), false, 3);   // [b, s, n]
        scores = apply("dropout", scores);
        Tensor p = Ops.softmax(t == 1.0 ? scores : Ops.mul(scores, 1.0 / t));
        if (config.temperature()) {
            t = Math.max(t - reduction, 1.0);
        }
        Tensor ctx = Ops.sum(Ops.mul(Ops.reshape(p, b, s, n, 1), v), false, 2);          // [b, s, h]
        if (config.value() && !config.valueBeforeSoftmax()) {
            ctx = apply("value", ctx);
        }
        return config.residualBefore() ? ctx : Ops.add(ctx, residual);
    }

    @Override
    protected String describe() {
        return "AdapterFusion(" + config + ")";
    }
}
