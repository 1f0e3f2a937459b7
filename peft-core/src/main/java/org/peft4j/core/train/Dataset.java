package org.peft4j.core.train;

import java.util.Collections;
import java.util.List;

/** A finite, indexable collection of examples. */
public interface Dataset<T> {

    int size();

    /** The example at {@code index} (0 ≤ index < size). */
    T get(int index);

    /** An immutable dataset over a copy of {@code examples}. */
    static <T> Dataset<T> of(List<? extends T> examples) {
        return new ListDataset<>(examples);
    }

    /** A list-backed dataset (the list is copied and may not contain nulls). */
    final class ListDataset<T> implements Dataset<T> {
        private final List<T> items;

        public ListDataset(List<? extends T> items) {
            if (items == null) {
                throw new IllegalArgumentException("dataset list must not be null");
            }
            for (int i = 0; i < items.size(); i++) {
                if (items.get(i) == null) {
                    throw new IllegalArgumentException("dataset example " + i + " is null");
                }
            }
            this.items = Collections.unmodifiableList(List.copyOf(items));
        }

        @Override
        public int size() {
            return items.size();
        }

        @Override
        public T get(int index) {
            if (index < 0 || index >= items.size()) {
                throw new IndexOutOfBoundsException("dataset index " + index + " out of [0, " + items.size() + ")");
            }
            return items.get(index);
        }

        public List<T> asList() {
            return items;
        }
    }
}
