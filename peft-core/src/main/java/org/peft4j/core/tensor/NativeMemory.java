package org.peft4j.core.tensor;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Keeps ND4J's off-heap garbage bounded. ND4J frees an array's native buffer only after the Java
 * garbage collector has found the array unreachable, and neither the JVM nor JavaCPP notices the
 * native side (ND4J's buffers are not counted in JavaCPP's {@code maxbytes}): a training step
 * allocates hundreds of megabytes off-heap but only a few megabytes of Java objects, so without
 * help the heap would not be collected for dozens of steps and the process would grow by the
 * size of every step's activations and gradients until then (measured: +800 MB per MiniLM
 * step at batch 16 × 128).
 *
 * <p>Every op result is counted here ({@link Tensor#fromOp}); once the results created since the
 * last collection exceed the budget, the next op runs {@code System.gc()}, after which ND4J's
 * deallocator thread returns the unreachable buffers. Live arrays are never affected. The budget
 * is {@value #DEFAULT_BUDGET_MB} MB by default; set the system property
 * {@code peft4j.gc.budgetMb} to change it, or to 0 to leave collection to the JVM.
 */
public final class NativeMemory {
    private static final Logger LOG = LoggerFactory.getLogger(NativeMemory.class);

    /** Default budget of op-result bytes between collections. */
    public static final long DEFAULT_BUDGET_MB = 256;

    private static final long BUDGET = Long.getLong("peft4j.gc.budgetMb", DEFAULT_BUDGET_MB) << 20;
    private static final AtomicLong SINCE_GC = new AtomicLong();
    private static final AtomicLong COLLECTIONS = new AtomicLong();

    private NativeMemory() {
    }

    /** Counts {@code bytes} of newly created op results; collects when the budget is exceeded. */
    static void allocated(long bytes) {
        if (BUDGET <= 0) {
            return;
        }
        if (SINCE_GC.addAndGet(bytes) > BUDGET) {
            SINCE_GC.set(0);
            COLLECTIONS.incrementAndGet();
            LOG.debug("{} MB of op results since the last collection: System.gc()", BUDGET >> 20);
            System.gc();
        }
    }

    /** Collections requested so far (monotonic). */
    public static long collections() {
        return COLLECTIONS.get();
    }

    /** The budget in bytes (0 = disabled). */
    public static long budgetBytes() {
        return Math.max(0, BUDGET);
    }
}
