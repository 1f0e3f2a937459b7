package org.peft4j.core.io;

import java.nio.file.Path;

/**
 * A {@code .safetensors} file that breaks the format's rules (those of the reference
 * implementation, huggingface/safetensors), or a request the file cannot satisfy (a missing
 * key, a dtype that has no ND4J counterpart).
 *
 * <p>The message always starts with the file and, when one is concerned, the tensor key, so a
 * user can find the culprit in a folder of shards: {@code /ckpt/model-00002-of-00003.safetensors:
 * tensor 'encoder.layer.3.output.dense.weight': ...}.
 */
public class SafeTensorsException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final transient Path file;
    private final String key;

    public SafeTensorsException(Path file, String key, String problem) {
        super(format(file, key, problem));
        this.file = file;
        this.key = key;
    }

    public SafeTensorsException(Path file, String key, String problem, Throwable cause) {
        super(format(file, key, problem), cause);
        this.file = file;
        this.key = key;
    }

    /** The offending file (may be null when the data did not come from a file). */
    public Path file() {
        return file;
    }

    /** The offending tensor key, or null for a file-level problem (header length, JSON syntax). */
    public String key() {
        return key;
    }

    private static String format(Path file, String key, String problem) {
        StringBuilder sb = new StringBuilder();
        sb.append(file == null ? "<safetensors data>" : file.toString()).append(": ");
        if (key != null) {
            sb.append("tensor '").append(key).append("': ");
        }
        return sb.append(problem).toString();
    }
}
