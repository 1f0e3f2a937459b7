package org.peft4j.core.train;

import java.util.List;

/** Turns a list of examples into one {@link Batch} of arrays. */
@FunctionalInterface
public interface Collator<T> {
    Batch collate(List<T> examples);
}
