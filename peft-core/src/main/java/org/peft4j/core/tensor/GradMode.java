package org.peft4j.core.tensor;

/** Per-thread switch for recording the autograd graph. Use {@link NoGrad} to turn it off. */
public final class GradMode {
    private static final ThreadLocal<Boolean> ENABLED = ThreadLocal.withInitial(() -> Boolean.TRUE);

    private GradMode() {
    }

    public static boolean isEnabled() {
        return ENABLED.get();
    }

    static void set(boolean enabled) {
        ENABLED.set(enabled);
    }
}
