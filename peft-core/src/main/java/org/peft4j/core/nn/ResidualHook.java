package org.peft4j.core.nn;

import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;

/**
 * A module inserted after a transformer sub-layer (attention or feed-forward) that takes over the
 * residual step closing it: given the sub-layer's output {@code out [batch, seq, hidden]} (after its
 * dropout), the stream before the sub-layer {@code residual [batch, seq, hidden]} and, in a
 * post-norm block (BERT), the sub-layer's norm, it returns the block's stream after the sub-layer.
 * Without a hook a block computes {@link #plain}: {@code norm(out + residual)} (post-norm) or
 * {@code out + residual} (pre-norm, {@code norm == null}).
 *
 * <p>Blocks offer named slots for hooks ({@link ResidualHookSite}); a method inserts its module
 * into a slot once ({@link ResidualHookSite#insertResidualHook}) and the block calls it instead of
 * its own step. Bottleneck adapters (peft-adapter) are the user: the module sits where AdapterHub
 * puts its adapter layers, so their state-dict keys are AdapterHub's.
 */
public interface ResidualHook {

    /** The stream after the sub-layer; {@code norm} is null in pre-norm blocks. */
    Tensor forward(Tensor out, Tensor residual, UnaryModule norm);

    /** The block's own step: {@code norm(out + residual)}, or {@code out + residual} without a norm. */
    static Tensor plain(Tensor out, Tensor residual, UnaryModule norm) {
        if (norm == null) {
            return Ops.add(residual, out);
        }
        if (norm instanceof LayerNorm l) {
            return l.forwardResidual(out, residual);   // the sum and the norm fused, as the block did
        }
        return norm.forward(Ops.add(out, residual));
    }

    /**
     * The step of slot {@code slot} of {@code block}: its hook if one was inserted, else
     * {@link #plain}.
     */
    static Tensor step(Module block, String slot, Tensor out, Tensor residual, UnaryModule norm) {
        Module hook = block.child(slot);
        if (hook instanceof ResidualHook h) {
            return h.forward(out, residual, norm);
        }
        return plain(out, residual, norm);
    }
}
