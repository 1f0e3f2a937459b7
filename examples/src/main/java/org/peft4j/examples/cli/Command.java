package org.peft4j.examples.cli;

import java.io.PrintStream;
import java.util.Set;

/** One {@code peft4j} subcommand. */
interface Command {
    /** The subcommand word, e.g. {@code "info"}. */
    String name();

    /** One line for the command list of {@code peft4j --help}. */
    String summary();

    /** The full help text of {@code peft4j <name> --help}. */
    String usage();

    /** Options that take a value ({@code --model DIR}). */
    Set<String> valueOptions();

    /** Options that are bare flags ({@code --greedy}). */
    default Set<String> flagOptions() {
        return Set.of();
    }

    /**
     * Runs the command. Results go to {@code out}, diagnostics to {@code err}; a user error is a
     * {@link CliException} (or an {@link IllegalArgumentException} from the library).
     */
    void run(Args args, PrintStream out, PrintStream err) throws Exception;
}
