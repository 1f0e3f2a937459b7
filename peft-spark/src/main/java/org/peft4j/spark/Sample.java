package org.peft4j.spark;

import java.io.Serializable;

/** One training row on its way to the task that consumes it: raw text or token ids, and the class id. */
record Sample(String text, int[] ids, int label) implements Serializable {
}
