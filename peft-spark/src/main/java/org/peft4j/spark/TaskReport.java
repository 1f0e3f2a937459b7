package org.peft4j.spark;

import java.io.Serializable;
import java.util.Map;

/**
 * What one training task reports to the driver: the global loss of every update (from the
 * first step of the run, checkpointed ones included), its own counters, and (task 0 only) the
 * files of the trained adapter folder.
 *
 * @param startStep      the step this attempt started from (0, or a checkpoint's)
 * @param bytesSent      payload bytes this task contributed to exchanges
 * @param bytesReceived  payload bytes this task received from exchanges (all tasks' messages)
 * @param computeNanos   forward + backward
 * @param exchangeNanos  encode, all-gather, decode and sum
 * @param gatherNanos    the all-gather call alone (includes waiting for the slowest task)
 * @param updateNanos    clipping and optimizer step
 */
record TaskReport(int task, long startStep, long steps, double[] losses, long exchanges, long bytesSent, long bytesReceived,
                  long computeNanos, long exchangeNanos, long gatherNanos, long updateNanos, long checkpointNanos, long checkpointBytes,
                  long totalNanos, long trainableValues, Map<String, byte[]> adapterFiles) implements Serializable {
}
