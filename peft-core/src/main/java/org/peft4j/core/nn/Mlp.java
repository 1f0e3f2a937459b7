package org.peft4j.core.nn;

import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

/**
 * Two-layer feed-forward block {@code down(act(up(x)))} followed by optional dropout, with
 * caller-chosen child names (GPT-2: {@code c_fc} / {@code c_proj} with {@code fanInFanOut};
 * GPT-NeoX-style {@code dense_h_to_4h} / {@code dense_4h_to_h}). The projections are looked up
 * by name at forward time, so LoRA can replace them.
 */
public class Mlp extends Module implements UnaryModule {
    /** The name the optional dropout child is registered under. */
    public static final String DROPOUT = "dropout";

    private final String upName;
    private final String downName;
    private final Activation activation;

    /**
     * @param up      {@code [.., hidden] → [.., intermediate]}, a {@link UnaryModule}
     * @param down    {@code [.., intermediate] → [.., hidden]}, a {@link UnaryModule}
     * @param dropout applied to the block's output, or null
     */
    public Mlp(String upName, Module up, Activation activation, String downName, Module down, Dropout dropout) {
        if (!(up instanceof UnaryModule) || !(down instanceof UnaryModule)) {
            throw new IllegalArgumentException("Mlp projections '" + upName + "' and '" + downName + "' must be UnaryModules");
        }
        if (activation == null) {
            throw new IllegalArgumentException("Mlp needs an activation");
        }
        this.upName = upName;
        this.downName = downName;
        this.activation = activation;
        registerModule(upName, up);
        registerModule(downName, down);
        if (dropout != null) {
            registerModule(DROPOUT, dropout);
        }
    }

    /**
     * Builds the two {@link Linear} layers with PyTorch's default initialisation (zeros when
     * {@code rng} is null); dropout after the block when {@code dropoutP > 0} (needs {@code rng}).
     */
    public static Mlp create(int hidden, int intermediate, String upName, String downName, String activation,
                             boolean bias, boolean fanInFanOut, double dropoutP, Rng rng) {
        if (dropoutP > 0 && rng == null) {
            throw new IllegalArgumentException("Mlp dropout " + dropoutP + " needs an Rng");
        }
        return new Mlp(upName, new Linear(hidden, intermediate, bias, fanInFanOut, rng), new Activation(activation),
                downName, new Linear(intermediate, hidden, bias, fanInFanOut, rng),
                dropoutP > 0 ? new Dropout(dropoutP, rng.fork()) : null);
    }

    public Activation activation() {
        return activation;
    }

    @Override
    public Tensor forward(Tensor x) {
        Tensor h = child(upName, UnaryModule.class).forward(x);
        h = activation.forward(h);
        h = child(downName, UnaryModule.class).forward(h);
        Module d = child(DROPOUT);
        return d == null ? h : ((UnaryModule) d).forward(h);
    }
}
