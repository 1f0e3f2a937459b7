package org.peft4j.core.train;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.PrintStream;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Prints one progress line per log record and one line per evaluation, e.g.
 * <pre>step 40/300 (13%) | epoch 0.53 | loss 0.6123 | lr 4.00e-05 | grad 1.230 | 812 tok/s | ETA 0:03:12</pre>
 * through SLF4J (INFO) by default, or to a supplied {@link PrintStream}.
 */
public final class ProgressListener implements TrainingListener {
    private static final Logger LOG = LoggerFactory.getLogger(ProgressListener.class);

    private final PrintStream out;

    /** Logs through SLF4J. */
    public ProgressListener() {
        this(null);
    }

    /** Prints to {@code out}; null logs through SLF4J. */
    public ProgressListener(PrintStream out) {
        this.out = out;
    }

    @Override
    public void onLog(TrainerContext ctx, LogEvent e) {
        emit(formatLog(e));
    }

    @Override
    public void onEvaluate(TrainerContext ctx, EvalEvent e) {
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "eval @ step %d | epoch %.2f", e.step(), e.epoch()));
        for (Map.Entry<String, Double> m : new TreeMap<>(e.metrics()).entrySet()) {
            sb.append(String.format(Locale.ROOT, " | %s %.4f", m.getKey(), m.getValue()));
        }
        emit(sb.toString());
    }

    @Override
    public void onTrainEnd(TrainerContext ctx, TrainResult r) {
        emit(String.format(Locale.ROOT, "training finished at step %d/%d (epoch %.2f)%s",
                r.globalStep(), r.totalSteps(), r.epoch(),
                r.stoppedEarly() ? ", stopped early: " + r.stopReason() : ""));
    }

    /** The progress line for a log record. */
    public static String formatLog(LogEvent e) {
        double pct = e.totalSteps() == 0 ? 100.0 : 100.0 * e.step() / e.totalSteps();
        return String.format(Locale.ROOT, "step %d/%d (%.0f%%) | epoch %.2f | loss %.4f | lr %.2e | grad %.3f | %.0f tok/s | ETA %s",
                e.step(), e.totalSteps(), pct, e.epoch(), e.loss(), e.lr(), e.gradNorm(), e.tokensPerSecond(),
                duration(e.etaSeconds()));
    }

    static String duration(double seconds) {
        if (!Double.isFinite(seconds) || seconds < 0) {
            return "?";
        }
        long s = Math.round(seconds);
        return String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
    }

    private void emit(String line) {
        if (out != null) {
            out.println(line);
        } else {
            LOG.info(line);
        }
    }
}
