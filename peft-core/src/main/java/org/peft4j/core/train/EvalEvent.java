package org.peft4j.core.train;

import java.util.Map;

/** Metrics of one evaluation, taken after update {@code step}. */
public record EvalEvent(long step, double epoch, Map<String, Double> metrics) {
    public EvalEvent {
        metrics = Map.copyOf(metrics);
    }
}
