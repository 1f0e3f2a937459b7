package org.peft4j.core.tensor;

/**
 * Turns graph recording off for the current thread until closed:
 * <pre>{@code try (NoGrad ignored = NoGrad.enter()) { model.forward(x); } }</pre>
 * Scopes nest; closing restores the state found on entry.
 */
public final class NoGrad implements AutoCloseable {
    private final boolean previous;

    private NoGrad() {
        previous = GradMode.isEnabled();
        GradMode.set(false);
    }

    public static NoGrad enter() {
        return new NoGrad();
    }

    @Override
    public void close() {
        GradMode.set(previous);
    }
}
