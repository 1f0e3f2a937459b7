package org.peft4j.core.train;

import java.nio.file.Path;
import java.util.Map;

/**
 * How a {@link Trainer#fit} call ended.
 *
 * @param globalStep       updates done in total (including those before a resume)
 * @param totalSteps       updates planned
 * @param epoch            fractional epoch reached
 * @param lastLoss         loss of the last update (NaN if no update ran)
 * @param lastEvalMetrics  metrics of the last evaluation (empty if none)
 * @param stoppedEarly     true if a listener (e.g. early stopping) ended the run
 * @param stopReason       why it stopped early, or null
 * @param lastCheckpoint   the newest checkpoint folder written, or null
 */
public record TrainResult(long globalStep, long totalSteps, double epoch, double lastLoss,
                          Map<String, Double> lastEvalMetrics, boolean stoppedEarly, String stopReason,
                          Path lastCheckpoint) {
    public TrainResult {
        lastEvalMetrics = Map.copyOf(lastEvalMetrics);
    }
}
