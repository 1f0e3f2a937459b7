package org.peft4j.core.tensor;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * A value in the autograd graph: an ND4J array, an optional gradient, and the closure that
 * back-propagates this tensor's gradient into the tensors it was computed from.
 *
 * <p>The tape is the graph itself (as in micrograd): every op result keeps its parents and
 * one {@link BackwardFn}. {@link #backward()} sorts the graph once and runs the closures in
 * reverse topological order. Tensors that do not require a gradient never get a buffer, and
 * op results whose inputs all lack {@code requiresGrad} record nothing at all.
 *
 * <p>Compute is fp32 throughout (ND4J {@code FLOAT}).
 */
public class Tensor {

    /** Propagates {@code gradOut} (the gradient w.r.t. this tensor's value) into the parents. */
    @FunctionalInterface
    public interface BackwardFn {
        void apply(INDArray gradOut);
    }

    static {
        Nd4j.setDefaultDataTypes(DataType.FLOAT, DataType.FLOAT);
    }

    private INDArray value;
    private INDArray grad;
    /** True while {@link #grad} is a reference to an array owned by someone else. */
    private boolean gradBorrowed;
    private boolean requiresGrad;
    private Tensor[] parents;
    private BackwardFn backwardFn;

    protected Tensor(INDArray value, boolean requiresGrad) {
        if (value == null) {
            throw new IllegalArgumentException("tensor value must not be null");
        }
        this.value = value;
        this.requiresGrad = requiresGrad;
        this.parents = new Tensor[0];
    }

    /** A leaf that does not take part in differentiation. */
    public static Tensor constant(INDArray value) {
        return new Tensor(value, false);
    }

    /** A leaf that collects a gradient (e.g. a parameter or an input under test). */
    public static Tensor variable(INDArray value) {
        return new Tensor(value, true);
    }

    /**
     * The result of an operation. It records {@code fn} and its parents only when gradient
     * recording is on ({@link GradMode}) and at least one parent requires a gradient; otherwise
     * it is a constant and the closure is dropped.
     */
    public static Tensor fromOp(INDArray value, BackwardFn fn, Tensor... parents) {
        if (value != null && !value.isView()) {
            NativeMemory.allocated(value.length() * value.dataType().width());   // perf: bounded off-heap garbage
        }
        boolean needs = false;
        if (GradMode.isEnabled()) {
            for (Tensor p : parents) {
                if (p != null && p.requiresGrad) {
                    needs = true;
                    break;
                }
            }
        }
        Tensor t = new Tensor(value, needs);
        if (needs) {
            t.parents = parents;
            t.backwardFn = fn;
        }
        return t;
    }

    public INDArray value() {
        return value;
    }

    /** Replaces the value in place (shape must match); used by optimizers and weight loading. */
    protected void setValueUnchecked(INDArray v) {
        this.value = v;
    }

    /** The accumulated gradient, or null when none was computed. */
    public INDArray grad() {
        return grad;
    }

    public boolean requiresGrad() {
        return requiresGrad;
    }

    /** Only leaves may change this flag. */
    public void setRequiresGrad(boolean requiresGrad) {
        if (backwardFn != null) {
            throw new IllegalStateException("requiresGrad can only be changed on leaf tensors");
        }
        this.requiresGrad = requiresGrad;
        if (!requiresGrad) {
            this.grad = null;
        }
    }

    public boolean isLeaf() {
        return backwardFn == null;
    }

    public long[] shape() {
        return value.shape();
    }

    public int rank() {
        return value.rank();
    }

    public long size(int dim) {
        return value.size(dim < 0 ? dim + value.rank() : dim);
    }

    public long length() {
        return value.length();
    }

    /** The value of a one-element tensor. */
    public float item() {
        if (value.length() != 1) {
            throw new IllegalStateException("item() needs a one-element tensor, shape is " + Arrays.toString(shape()));
        }
        return value.getFloat(0);
    }

    /** A constant sharing this tensor's value, cut from the graph. */
    public Tensor detach() {
        return Tensor.constant(value);
    }

    /** Drops the gradient (the next backward allocates a fresh one). */
    public void zeroGrad() {
        grad = null;
        gradBorrowed = false;
    }

    /**
     * Adds {@code g} (same shape as the value) to this tensor's gradient. No-op when the tensor
     * does not require a gradient. The first contribution to an intermediate result is kept by
     * reference (no copy); leaves always own their buffer, so in-place changes to one leaf's
     * gradient (clipping, optimizers) never touch another's.
     */
    public void accumulateGrad(INDArray g) {
        if (!requiresGrad) {
            return;
        }
        if (!Arrays.equals(g.shape(), value.shape())) {
            throw new IllegalStateException("gradient shape " + Arrays.toString(g.shape())
                    + " does not match value shape " + Arrays.toString(value.shape()));
        }
        if (grad == null) {
            if (isLeaf()) {
                grad = g.dup('c');
                gradBorrowed = false;
            } else {
                grad = g;
                gradBorrowed = true;
            }
        } else if (gradBorrowed) {
            grad = grad.add(g);
            gradBorrowed = false;
        } else {
            grad.addi(g);
        }
    }

    /**
     * Like {@link #accumulateGrad} for an array that the caller has just allocated and will never
     * touch again (a fresh c-order op result): the first contribution is adopted without the
     * defensive copy a leaf would otherwise make. Package-private: only {@link Ops} may use it.
     */
    void accumulateOwnedGrad(INDArray g) {
        if (!requiresGrad) {
            return;
        }
        if (grad != null || g.ordering() != 'c' || !org.nd4j.linalg.api.shape.Shape.hasDefaultStridesForShape(g)) {
            accumulateGrad(g);
            return;
        }
        if (!Arrays.equals(g.shape(), value.shape())) {
            throw new IllegalStateException("gradient shape " + Arrays.toString(g.shape())
                    + " does not match value shape " + Arrays.toString(value.shape()));
        }
        grad = g;
        gradBorrowed = false;
    }

    /**
     * The gradient buffer if this tensor owns it and it may be accumulated into in place (e.g. a
     * GEMM with beta = 1), else null. Package-private: only {@link Ops} may use it.
     */
    INDArray ownedGrad() {
        return requiresGrad && grad != null && !gradBorrowed ? grad : null;
    }

    /** Back-propagates from a one-element tensor, seeding its gradient with 1. */
    public void backward() {
        if (value.length() != 1) {
            throw new IllegalStateException("backward() without a seed needs a scalar, shape is " + Arrays.toString(shape()));
        }
        backward(Nd4j.onesLike(value));
    }

    /**
     * Back-propagates {@code seed} (shape of this value) through the graph. Walks it once in
     * reverse topological order; intermediate gradients and closures are released as soon as
     * they have been used, so the graph can be run backward only once.
     */
    public void backward(INDArray seed) {
        if (!requiresGrad) {
            throw new IllegalStateException("backward() on a tensor that does not require grad "
                    + "(no parameter in its graph requires a gradient, or it was computed under NoGrad)");
        }
        List<Tensor> order = topologicalOrder();
        accumulateGrad(seed);
        for (int i = order.size() - 1; i >= 0; i--) {
            Tensor t = order.get(i);
            if (t.backwardFn == null) {
                continue;
            }
            INDArray g = t.grad;
            if (g != null) {
                t.backwardFn.apply(g);
            }
            // free the graph behind us: non-leaf gradients are not retained (as in PyTorch)
            t.grad = null;
            t.gradBorrowed = false;
            t.backwardFn = null;
            t.parents = new Tensor[0];
            t.requiresGrad = false;
        }
    }

    /** Iterative DFS post-order, so deep graphs do not overflow the Java stack. */
    private List<Tensor> topologicalOrder() {
        List<Tensor> order = new ArrayList<>();
        Map<Tensor, Boolean> visited = new IdentityHashMap<>();
        Deque<Object[]> stack = new ArrayDeque<>();
        stack.push(new Object[]{this, 0});
        visited.put(this, Boolean.TRUE);
        while (!stack.isEmpty()) {
            Object[] frame = stack.peek();
            Tensor t = (Tensor) frame[0];
            int idx = (Integer) frame[1];
            if (idx < t.parents.length) {
                frame[1] = idx + 1;
                Tensor p = t.parents[idx];
                if (p != null && p.requiresGrad && !visited.containsKey(p)) {
                    visited.put(p, Boolean.TRUE);
                    stack.push(new Object[]{p, 0});
                }
            } else {
                stack.pop();
                order.add(t);
            }
        }
        return order;
    }

    @Override
    public String toString() {
        return "Tensor" + Arrays.toString(shape()) + (requiresGrad ? "(requiresGrad)" : "");
    }
}
