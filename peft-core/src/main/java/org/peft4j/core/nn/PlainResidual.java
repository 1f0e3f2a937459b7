package org.peft4j.core.nn;

import org.peft4j.core.tensor.Tensor;

/**
 * The block's own residual step as a module ({@link ResidualHook#plain}): what a residual-hook
 * slot holds when the hook that was there is unloaded, and the base an adapter layer in a slot
 * wraps. It has no parameters.
 */
public final class PlainResidual extends Module implements ResidualHook {
    @Override
    public Tensor forward(Tensor out, Tensor residual, UnaryModule norm) {
        return ResidualHook.plain(out, residual, norm);
    }

    @Override
    protected String describe() {
        return "PlainResidual";
    }
}
