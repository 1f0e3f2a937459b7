package org.peft4j.core.tensor;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Recycles the attention core's internal FLOAT buffers (score/probability matrices
 * {@code [B, H, T, S]} and their gradients, 12.6 MB each for MiniLM at batch 16 × 128): a fresh
 * array that size costs milliseconds of page faults on these machines, and these buffers never
 * leave {@link ScaledDotProductAttention}, so it can hand them back as soon as the backward pass (or, without
 * a graph, the forward pass) is done with them.
 *
 * <p>Buffers are allocated outside any ND4J workspace (they outlive a step) and reused by
 * length. At most {@link #MAX_IDLE_BYTES} are kept idle; beyond that a returned buffer is left
 * to the garbage collector.
 */
final class BufferPool {
    /** Idle memory the pool may hold. */
    static final long MAX_IDLE_BYTES = 256L << 20;

    private static final Map<Long, ConcurrentLinkedDeque<INDArray>> FREE = new ConcurrentHashMap<>();
    private static final AtomicLong IDLE = new AtomicLong();

    private BufferPool() {
    }

    /** An uninitialised c-order FLOAT array of {@code shape}, recycled when one of that length is idle. */
    static INDArray take(long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        ConcurrentLinkedDeque<INDArray> q = FREE.get(n);
        INDArray a = q == null ? null : q.pollFirst();
        if (a != null) {
            IDLE.addAndGet(-4 * n);
            return a.reshape('c', shape);
        }
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            return Nd4j.createUninitialized(DataType.FLOAT, shape);
        }
    }

    /** Returns a buffer obtained from {@link #take}; the caller must not touch it afterwards. */
    static void give(INDArray a) {
        if (a == null) {
            return;
        }
        long bytes = 4 * a.length();
        if (IDLE.addAndGet(bytes) > MAX_IDLE_BYTES) {
            IDLE.addAndGet(-bytes);
            return;
        }
        FREE.computeIfAbsent(a.length(), k -> new ConcurrentLinkedDeque<>()).offerFirst(a);
    }
}
