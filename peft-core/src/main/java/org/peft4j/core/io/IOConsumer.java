package org.peft4j.core.io;

import java.io.IOException;

/**
 * A consumer that may throw {@link IOException}: the callback type of {@link AtomicFiles}, so that
 * code which writes into a stream, channel or folder does not have to wrap its I/O errors.
 *
 * @param <T> what is handed to the callback (an {@code OutputStream}, a {@code FileChannel}, a
 *            temporary folder's {@code Path})
 */
@FunctionalInterface
public interface IOConsumer<T> {
    void accept(T value) throws IOException;
}
