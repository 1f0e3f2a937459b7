package org.peft4j.core.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Locale;
import java.util.TreeSet;

/**
 * Stops training when an evaluation metric has not improved for {@code patience}
 * evaluations in a row. An improvement is a change of more than {@code threshold} in the
 * right direction over the best value so far. Its state (best value, its step, the count of
 * evaluations without improvement) is saved in checkpoints.
 */
public final class EarlyStopping implements TrainingListener {

    private final String metric;
    private final int patience;
    private final boolean greaterIsBetter;
    private final double threshold;

    private double best = Double.NaN;
    private long bestStep = -1;
    private int badEvaluations;

    public EarlyStopping(String metric, int patience, boolean greaterIsBetter, double threshold) {
        if (metric == null || metric.isBlank()) {
            throw new IllegalArgumentException("early stopping needs a metric name");
        }
        if (patience < 1) {
            throw new IllegalArgumentException("early stopping patience must be >= 1: " + patience);
        }
        if (!(threshold >= 0) || Double.isInfinite(threshold)) {
            throw new IllegalArgumentException("early stopping threshold must be finite and >= 0: " + threshold);
        }
        this.metric = metric;
        this.patience = patience;
        this.greaterIsBetter = greaterIsBetter;
        this.threshold = threshold;
    }

    public String metric() {
        return metric;
    }

    /** Best value seen so far (NaN before the first evaluation). */
    public double best() {
        return best;
    }

    public long bestStep() {
        return bestStep;
    }

    public int badEvaluations() {
        return badEvaluations;
    }

    @Override
    public void onEvaluate(TrainerContext ctx, EvalEvent e) {
        Double v = e.metrics().get(metric);
        if (v == null) {
            throw new IllegalArgumentException("early stopping metric '" + metric + "' is not among the evaluation metrics "
                    + new TreeSet<>(e.metrics().keySet()));
        }
        boolean improved = Double.isNaN(best)
                || (greaterIsBetter ? v > best + threshold : v < best - threshold);
        if (improved && Double.isFinite(v)) {
            best = v;
            bestStep = e.step();
            badEvaluations = 0;
        } else {
            badEvaluations++;
            if (badEvaluations >= patience) {
                ctx.requestStop(String.format(Locale.ROOT, "%s did not improve for %d evaluations (best %.6g at step %d)",
                        metric, badEvaluations, best, bestStep));
            }
        }
    }

    @Override
    public String stateKey() {
        return "early_stopping";
    }

    @Override
    public JsonNode saveState() {
        ObjectNode n = JsonNodeFactory.instance.objectNode();
        n.put("metric", metric);
        if (Double.isNaN(best)) {
            n.putNull("best");
        } else {
            n.put("best", best);
        }
        n.put("best_step", bestStep);
        n.put("bad_evaluations", badEvaluations);
        return n;
    }

    @Override
    public void restoreState(JsonNode n) {
        if (!metric.equals(n.path("metric").asText())) {
            throw new IllegalArgumentException("checkpoint early-stopping state watches '" + n.path("metric").asText()
                    + "', this run watches '" + metric + "'");
        }
        best = n.path("best").isNull() ? Double.NaN : n.path("best").asDouble();
        bestStep = n.path("best_step").asLong(-1);
        badEvaluations = n.path("bad_evaluations").asInt(0);
    }
}
