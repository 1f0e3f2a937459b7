package org.peft4j.core.train;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Module;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/** Classification metrics and a ready-made {@link EvalFunction} for classifiers. */
public final class Metrics {
    private Metrics() {
    }

    /**
     * {@code {correct, counted}}: arg-max predictions of {@code logits [..., C]} that equal
     * {@code labels [...]}, over positions whose label is not {@link Batch#IGNORE_INDEX}.
     */
    public static long[] correctAndCounted(INDArray logits, INDArray labels) {
        if (logits.rank() < 1) {
            throw new IllegalArgumentException("logits must have a class axis, got a scalar");
        }
        long classes = logits.size(logits.rank() - 1);
        long[] lead = Arrays.copyOf(logits.shape(), logits.rank() - 1);
        if (!Arrays.equals(lead, labels.shape())) {
            throw new IllegalArgumentException("labels " + Arrays.toString(labels.shape()) + " do not match logits "
                    + Arrays.toString(logits.shape()) + " (need " + Arrays.toString(lead) + ")");
        }
        long rows = labels.length();
        // explicit long[]: reshape('c', long...) with a char first argument resolves to reshape(long...)
        INDArray flat = logits.dup('c').reshape(new long[]{rows, classes});
        long[] pred = Nd4j.argMax(flat, 1).toLongVector();
        long[] gold = labels.dup('c').reshape(new long[]{rows}).toLongVector();
        long correct = 0;
        long counted = 0;
        for (int i = 0; i < rows; i++) {
            if (gold[i] == Batch.IGNORE_INDEX) {
                continue;
            }
            counted++;
            if (pred[i] == gold[i]) {
                correct++;
            }
        }
        return new long[]{correct, counted};
    }

    /** Accuracy of arg-max predictions (NaN when every label is ignored). */
    public static double accuracy(INDArray logits, INDArray labels) {
        long[] c = correctAndCounted(logits, labels);
        return c[1] == 0 ? Double.NaN : (double) c[0] / c[1];
    }

    /**
     * An evaluation that reports {@code eval_loss} (mean cross-entropy over counted positions)
     * and {@code accuracy} in one pass, for sequence ({@code [B, C]} vs labels {@code [B]}) or
     * token ({@code [B, T, C]} vs {@code [B, T]} with -100) classification.
     */
    public static EvalFunction classification(LogitsFunction logitsFn) {
        if (logitsFn == null) {
            throw new IllegalArgumentException("classification evaluation needs a logits function");
        }
        return (Module model, Iterable<Batch> batches) -> {
            double lossSum = 0.0;
            long correct = 0;
            long counted = 0;
            for (Batch b : batches) {
                if (b.labels() == null) {
                    throw new IllegalArgumentException("classification evaluation needs labels in every batch");
                }
                Tensor logits = logitsFn.logits(model, b);
                long[] c = correctAndCounted(logits.value(), b.labels());
                correct += c[0];
                counted += c[1];
                if (c[1] > 0) {
                    lossSum += Ops.crossEntropy(logits, b.labels(), Ops.Reduction.SUM).item();
                }
            }
            Map<String, Double> m = new LinkedHashMap<>();
            m.put("eval_loss", counted == 0 ? Double.NaN : lossSum / counted);
            m.put("accuracy", counted == 0 ? Double.NaN : (double) correct / counted);
            return m;
        };
    }
}
