package org.peft4j.examples.cli;

import org.peft4j.core.io.FiniteCheck;
import org.peft4j.core.peft.PeftException;
import org.peft4j.core.train.TrainingDivergedException;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.NoSuchFileException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code peft4j} command-line app: {@code peft4j <command> [options]}, {@code peft4j --help},
 * {@code peft4j <command> --help}.
 *
 * <p>Exit codes: 0 success, 2 user error (bad option, missing file, invalid config — one line on
 * stderr, no stack trace), 1 internal error (with the stack trace). {@code --debug} (anywhere on
 * the line) or {@code PEFT4J_DEBUG=1} prints stack traces for user errors too. Running out of
 * memory is a user error naming the limit to raise ({@code PEFT4J_JAVA_OPTS}).
 *
 * <p>Weights or adapters holding NaN or Inf are reported when loaded with a warning naming the
 * tensor; {@code --strict-finite} (anywhere on the line) makes that an error
 * ({@link FiniteCheck.Policy#ERROR} for the run).
 */
public final class Peft4jCli {
    /** Exit code of a user error. */
    public static final int USAGE_ERROR = 2;
    /** Exit code of an unexpected failure. */
    public static final int INTERNAL_ERROR = 1;

    private final Map<String, Command> commands = new LinkedHashMap<>();

    public Peft4jCli() {
        for (Command c : List.of(new DemoCommand(), new TrainCommand(), new EvalCommand(), new PredictCommand(),
                new MergeCommand(), new CompareCommand(), new InfoCommand(), new LogitsCommand(), new GenerateCommand(),
                new EmbedCommand(), new QuantizeCliCommand(), new DataCommand(), new DistillCommand(),
                new Seq2SeqExperimentCommand())) {
            commands.put(c.name(), c);
        }
    }

    public static void main(String[] argv) {
        // The app talks to the user on stdout; library INFO logs would drown that, so warn-level
        // by default unless the user chose a level.
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }
        // DJL probes for CUDA at start-up and warns when there is none; peft4j runs on the CPU anyway
        if (System.getProperty("org.slf4j.simpleLogger.log.ai.djl.util.cuda.CudaUtils") == null) {
            System.setProperty("org.slf4j.simpleLogger.log.ai.djl.util.cuda.CudaUtils", "error");
        }
        System.exit(new Peft4jCli().run(argv, System.out, System.err));
    }

    /** Runs one command line; returns the exit code (never calls {@code System.exit}). */
    public int run(String[] argv, PrintStream out, PrintStream err) {
        // --debug anywhere: stack traces for user errors too (as PEFT4J_DEBUG=1)
        boolean debug = "1".equals(System.getenv("PEFT4J_DEBUG"));
        boolean strictFinite = false;
        List<String> kept = new java.util.ArrayList<>();
        for (String a : argv) {
            if (a.equals("--debug")) {
                debug = true;
            } else if (a.equals(STRICT_FINITE)) {
                strictFinite = true;
            } else {
                kept.add(a);
            }
        }
        argv = kept.toArray(new String[0]);
        // --strict-finite anywhere: a NaN/Inf weight is an error instead of a warning, for this run
        FiniteCheck.Policy before = strictFinite ? FiniteCheck.setPolicy(FiniteCheck.Policy.ERROR) : null;
        try {
            return run(argv, out, err, debug);
        } finally {
            if (before != null) {
                FiniteCheck.setPolicy(before);
            }
        }
    }

    /** The global flag that makes a NaN/Inf in loaded weights an error. */
    static final String STRICT_FINITE = "--strict-finite";

    private int run(String[] argv, PrintStream out, PrintStream err, boolean debug) {
        if (argv.length == 0 || isHelp(argv[0]) || argv[0].equals("help") && argv.length == 1) {
            out.print(mainHelp());
            return argv.length == 0 ? USAGE_ERROR : 0;
        }
        String name = argv[0].equals("help") ? argv[1] : argv[0];
        Command cmd = commands.get(name);
        if (cmd == null) {
            err.println("peft4j: unknown command '" + name + "' (commands: " + String.join(", ", commands.keySet())
                    + "; see peft4j --help)");
            return USAGE_ERROR;
        }
        if (argv[0].equals("help") || hasHelpFlag(argv)) {
            out.print(cmd.usage());
            return 0;
        }
        try {
            Args args = new Args(argv, 1, cmd.valueOptions(), cmd.flagOptions());
            cmd.run(args, out, err);
            out.flush();
            return 0;
        } catch (CliException | IllegalArgumentException | UnsupportedOperationException | PeftException e) {
            return userError(name, e, err, debug);
        } catch (TrainingDivergedException e) {
            // at the first step a NaN is more likely in the inputs than caused by the learning rate
            String hint = e.step() <= 1 ? "try a lower learning rate, or look for NaN/Inf in the model's weights:"
                    + " --strict-finite refuses them" : "try a lower learning rate";
            return userError(name, new CliException(e.getMessage() + " (" + hint + ")", e), err, debug);
        } catch (UncheckedIOException e) {
            return userError(name, e.getCause(), err, debug);
        } catch (NoSuchFileException e) {
            return userError(name, new CliException("no such file: " + e.getMessage(), e), err, debug);
        } catch (IOException e) {
            return userError(name, e, err, debug);
        } catch (OutOfMemoryError e) {
            return userError(name, new CliException(outOfMemoryMessage(e), e), err, debug);
        } catch (Exception | Error e) {
            err.println("peft4j " + name + ": internal error: " + e);
            e.printStackTrace(err);
            return INTERNAL_ERROR;
        }
    }

    /**
     * What to say when the heap or ND4J's off-heap memory (JavaCPP's {@code maxbytes} /
     * {@code maxphysicalbytes}) runs out: which limit, its value, and the variable to raise it.
     */
    static String outOfMemoryMessage(OutOfMemoryError e) {
        String m = e.getMessage() == null ? "" : e.getMessage();
        boolean offHeap = m.contains("physical") || m.contains("Physical") || m.contains("maxbytes")
                || m.contains("Cannot allocate") || m.contains("Direct buffer");
        String limits = String.format(java.util.Locale.ROOT, "heap limit %d MB, off-heap limit %d MB, physical memory limit %d MB",
                Runtime.getRuntime().maxMemory() >> 20, org.bytedeco.javacpp.Pointer.maxBytes() >> 20,
                org.bytedeco.javacpp.Pointer.maxPhysicalBytes() >> 20);
        return "out of " + (offHeap ? "off-heap (ND4J) memory" : "Java heap memory") + " (" + limits + "): the model"
                + " or batch is too big for these limits; raise them with PEFT4J_JAVA_OPTS, e.g. PEFT4J_JAVA_OPTS=\"-Xmx8g"
                + " -Dorg.bytedeco.javacpp.maxbytes=16g -Dorg.bytedeco.javacpp.maxphysicalbytes=24g\", or use a"
                + " smaller batch_size / max_length";
    }

    private static int userError(String command, Throwable e, PrintStream err, boolean debug) {
        String msg = e.getMessage() == null ? e.toString() : e.getMessage();
        if (e instanceof IOException && !(e.getMessage() != null && e.getMessage().contains(" "))) {
            msg = e.getClass().getSimpleName() + ": " + msg;
        }
        // one line: library messages may list things over several lines
        err.println("peft4j " + command + ": error: " + msg.replaceAll("\\s*\\R\\s*", " ").strip());
        if (debug) {
            e.printStackTrace(err);
        }
        return USAGE_ERROR;
    }

    private static boolean isHelp(String a) {
        return a.equals("--help") || a.equals("-h");
    }

    private static boolean hasHelpFlag(String[] argv) {
        for (int i = 1; i < argv.length; i++) {
            if (isHelp(argv[i])) {
                return true;
            }
        }
        return false;
    }

    String mainHelp() {
        StringBuilder sb = new StringBuilder();
        sb.append("peft4j — parameter-efficient fine-tuning of transformers on the JVM\n\n");
        sb.append("usage: peft4j <command> [options]        peft4j <command> --help for its options\n\n");
        sb.append("commands:\n");
        for (Command c : commands.values()) {
            sb.append(String.format("  %-9s %s%n", c.name(), c.summary()));
        }
        sb.append("\nmodels: 'minilm' (all-MiniLM-L6-v2) and 'bge-small' (bge-small-en-v1.5) are bundled;\n");
        sb.append("any Hugging Face folder (config.json + model.safetensors) of a BERT, GPT-2 or LLaMA-family model works.\n");
        sb.append("\nanywhere on the line: --debug (stack traces for errors), --strict-finite (NaN/Inf in loaded\n");
        sb.append("weights is an error, not a warning); memory limits: PEFT4J_JAVA_OPTS=\"-Xmx8g ...\"\n");
        sb.append("start with:  peft4j demo\n");
        return sb.toString();
    }
}
