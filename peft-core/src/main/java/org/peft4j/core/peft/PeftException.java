package org.peft4j.core.peft;

/** A PEFT-level failure that is not simply a bad argument (e.g. an adapter folder that cannot be written). */
public class PeftException extends RuntimeException {
    public PeftException(String message) {
        super(message);
    }

    public PeftException(String message, Throwable cause) {
        super(message, cause);
    }
}
