package org.peft4j.core.nn;

import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

/**
 * Gated feed-forward block {@code down(act(gate(x)) ⊙ up(x))} (LLaMA / Mistral / Qwen2 with
 * {@code silu}: children {@code gate_proj}, {@code up_proj}, {@code down_proj}). Child names are
 * the caller's; projections are looked up by name at forward time, so LoRA can replace them.
 */
public class SwiGluMlp extends Module implements UnaryModule {
    private final String gateName;
    private final String upName;
    private final String downName;
    private final Activation activation;

    public SwiGluMlp(String gateName, Module gate, String upName, Module up, String downName, Module down, Activation activation) {
        if (!(gate instanceof UnaryModule) || !(up instanceof UnaryModule) || !(down instanceof UnaryModule)) {
            throw new IllegalArgumentException("SwiGluMlp projections '" + gateName + "', '" + upName + "', '" + downName
                    + "' must be UnaryModules");
        }
        if (activation == null) {
            throw new IllegalArgumentException("SwiGluMlp needs an activation");
        }
        this.gateName = gateName;
        this.upName = upName;
        this.downName = downName;
        this.activation = activation;
        registerModule(gateName, gate);
        registerModule(upName, up);
        registerModule(downName, down);
    }

    /** LLaMA layout: {@code gate_proj}, {@code up_proj}, {@code down_proj}, given activation, PyTorch default init (zeros when rng is null). */
    public static SwiGluMlp create(int hidden, int intermediate, String activation, boolean bias, Rng rng) {
        return create(hidden, intermediate, "gate_proj", "up_proj", "down_proj", activation, bias, rng);
    }

    public static SwiGluMlp create(int hidden, int intermediate, String gateName, String upName, String downName,
                                   String activation, boolean bias, Rng rng) {
        return new SwiGluMlp(gateName, new Linear(hidden, intermediate, bias, rng),
                upName, new Linear(hidden, intermediate, bias, rng),
                downName, new Linear(intermediate, hidden, bias, rng), new Activation(activation));
    }

    public Activation activation() {
        return activation;
    }

    @Override
    public Tensor forward(Tensor x) {
        Tensor gate = activation.forward(child(gateName, UnaryModule.class).forward(x));
        Tensor up = child(upName, UnaryModule.class).forward(x);
        return child(downName, UnaryModule.class).forward(Ops.mul(gate, up));
    }
}
