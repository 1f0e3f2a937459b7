package org.peft4j.core.nn;

import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

/**
 * Inverted dropout: in training, zero each element with probability {@code p} and scale the rest by
 * {@code 1/(1−p)}; the identity in eval mode or when {@code p = 0}. Masks come from the given {@link Rng}.
 */
public class Dropout extends Module implements UnaryModule {
    private final double p;
    private final Rng rng;

    public Dropout(double p, Rng rng) {
        if (!(p >= 0.0 && p < 1.0)) {
            throw new IllegalArgumentException("dropout probability must be in [0, 1), got " + p);
        }
        if (p > 0.0 && rng == null) {
            throw new IllegalArgumentException("dropout with p=" + p + " needs an Rng (explicit seed)");
        }
        this.p = p;
        this.rng = rng;
    }

    public double p() {
        return p;
    }

    /** The generator of the masks (null when p = 0): a trainer saves and restores it for an exact resume. */
    public Rng rng() {
        return rng;
    }

    @Override
    public Tensor forward(Tensor x) {
        if (p == 0.0 || !isTraining()) {
            return x;
        }
        return Ops.dropout(x, p, true, rng);
    }

    @Override
    protected String describe() {
        return "Dropout(p=" + p + ")";
    }
}
