package org.peft4j.spark;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The executor-wide pool of loaded models, so the frozen base is built once per executor JVM
 * and task slot, not once per task or step. A replica is used by one task at a time (forward
 * passes reuse per-module buffers): {@link #acquire} hands out an idle one or builds a new one,
 * {@link #release} returns it. Two concurrent tasks on one executor (local[2], or
 * {@code spark.task.cpus} below the executor's cores) thus hold two replicas.
 */
final class Replicas {
    private static final Map<String, Deque<Object>> IDLE = new HashMap<>();

    private Replicas() {
    }

    @SuppressWarnings("unchecked")
    static <T> T acquire(String key, Supplier<T> build) {
        synchronized (IDLE) {
            Deque<Object> q = IDLE.get(key);
            if (q != null && !q.isEmpty()) {
                return (T) q.pop();
            }
        }
        return build.get();
    }

    static void release(String key, Object replica) {
        synchronized (IDLE) {
            IDLE.computeIfAbsent(key, k -> new ArrayDeque<>()).push(replica);
        }
    }

    /** Drops every cached replica (tests that change models between runs). */
    static void clear() {
        synchronized (IDLE) {
            IDLE.clear();
        }
    }
}
