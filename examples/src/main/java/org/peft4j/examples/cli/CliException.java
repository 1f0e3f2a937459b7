package org.peft4j.examples.cli;

/** A user error on the command line: printed as one line without a stack trace, exit code 2. */
final class CliException extends RuntimeException {
    CliException(String message) {
        super(message);
    }

    CliException(String message, Throwable cause) {
        super(message, cause);
    }
}
