package org.peft4j.core.io;

/**
 * A checkpoint folder that is incomplete or inconsistent: a missing or invalid
 * {@code config.json}, a shard named by {@code model.safetensors.index.json} that does not exist,
 * a key listed in the index but absent from its shard, or a shard holding keys the index does not
 * list. The message names the folder or file and the key.
 */
public class CheckpointException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public CheckpointException(String message) {
        super(message);
    }

    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
