package org.peft4j.core.nn;

import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;

import java.util.Locale;

/**
 * An activation function chosen by its Hugging Face name ({@code hidden_act}): {@code gelu} (exact
 * erf form), {@code gelu_new} / {@code gelu_pytorch_tanh} / {@code gelu_fast} (tanh form),
 * {@code relu}, {@code silu} / {@code swish}, {@code tanh}, {@code sigmoid}, {@code linear} / {@code identity}.
 */
public class Activation extends Module implements UnaryModule {
    /** The supported functions. */
    public enum Kind { GELU, GELU_TANH, RELU, SILU, TANH, SIGMOID, IDENTITY }

    private final String name;
    private final Kind kind;

    public Activation(String hfName) {
        this.name = hfName;
        this.kind = kindOf(hfName);
    }

    /** Maps a Hugging Face {@code hidden_act} string to a {@link Kind}. */
    public static Kind kindOf(String hfName) {
        if (hfName == null) {
            throw new IllegalArgumentException("activation name must not be null");
        }
        switch (hfName.toLowerCase(Locale.ROOT)) {
            case "gelu":
                return Kind.GELU;
            case "gelu_new":
            case "gelu_pytorch_tanh":
            case "gelu_fast":
                return Kind.GELU_TANH;
            case "relu":
                return Kind.RELU;
            case "silu":
            case "swish":
                return Kind.SILU;
            case "tanh":
                return Kind.TANH;
            case "sigmoid":
                return Kind.SIGMOID;
            case "linear":
            case "identity":
                return Kind.IDENTITY;
            default:
                throw new IllegalArgumentException("unsupported activation '" + hfName
                        + "' (supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, swish, tanh, sigmoid, linear)");
        }
    }

    public String name() {
        return name;
    }

    public Kind kind() {
        return kind;
    }

    @Override
    public Tensor forward(Tensor x) {
        switch (kind) {
            case GELU:
                return Ops.gelu(x);
            case GELU_TANH:
                return Ops.geluTanh(x);
            case RELU:
                return Ops.relu(x);
            case SILU:
                return Ops.silu(x);
            case TANH:
                return Ops.tanh(x);
            case SIGMOID:
                return Ops.sigmoid(x);
            case IDENTITY:
                return x;
            default:
                throw new IllegalStateException("unhandled activation " + kind);
        }
    }

    @Override
    protected String describe() {
        return "Activation(" + name + ")";
    }
}
