package org.peft4j.core.train;

/**
 * A training log record, emitted every {@code logInterval} updates and at the last one.
 *
 * @param step            updates done so far
 * @param totalSteps      updates planned
 * @param epoch           fractional epoch
 * @param loss            mean update loss since the previous log record
 * @param lr              learning rate of the last update
 * @param gradNorm        gradient norm of the last update (before clipping)
 * @param tokensPerSecond real tokens per second since the previous log record (wall clock)
 * @param elapsedSeconds  wall-clock seconds of this {@code fit} call so far
 * @param etaSeconds      estimated seconds to the last update
 */
public record LogEvent(long step, long totalSteps, double epoch, double loss, double lr, double gradNorm,
                       double tokensPerSecond, double elapsedSeconds, double etaSeconds) {
}
