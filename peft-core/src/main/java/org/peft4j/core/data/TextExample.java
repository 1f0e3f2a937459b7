package org.peft4j.core.data;

import java.util.Objects;

/**
 * One labelled text for sequence classification: the raw text (not yet tokenized) and the class
 * index in {@code [0, numLabels)}.
 *
 * @param text  the text, never null (may be empty)
 * @param label the class index, {@code >= 0}
 */
public record TextExample(String text, int label) {
    public TextExample {
        Objects.requireNonNull(text, "text");
        if (label < 0) {
            throw new IllegalArgumentException("label must be >= 0, got " + label);
        }
    }

    @Override
    public String toString() {
        // Reviews run to thousands of characters; keep log lines and assertion messages readable.
        String shown = text.length() <= 60 ? text : text.substring(0, 57) + "...";
        return "TextExample[label=" + label + ", text=\"" + shown.replace("\n", "\\n") + "\"]";
    }
}
