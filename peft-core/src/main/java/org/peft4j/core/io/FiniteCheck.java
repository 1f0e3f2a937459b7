package org.peft4j.core.io;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.longer.MatchCondition;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.conditions.Conditions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What happens when a loaded weight holds NaN or Inf (a checkpoint saved after training diverged,
 * or a damaged download). Every model and adapter loader checks each floating-point tensor as it
 * is read ({@link CheckpointWeights#get}, the ONNX import, prompt encoders, trainer checkpoints):
 * by default ({@link Policy#WARN}) a warning names the file, the tensor and the counts; with
 * {@link Policy#ERROR} loading fails with a {@link CheckpointException} saying the same.
 *
 * <p>The policy is process-wide: {@link #setPolicy} from Java, {@code --strict-finite} on the
 * {@code peft4j} command line, or {@code -Dpeft4j.strictFinite=true} at start-up.
 */
public final class FiniteCheck {
    private static final Logger LOG = LoggerFactory.getLogger(FiniteCheck.class);

    /** What a non-finite weight causes. */
    public enum Policy {
        /** A warning naming the tensor; the weights load. */
        WARN,
        /** A {@link CheckpointException} naming the tensor; nothing loads. */
        ERROR
    }

    private static volatile Policy policy = Boolean.getBoolean("peft4j.strictFinite") ? Policy.ERROR : Policy.WARN;

    private FiniteCheck() {
    }

    public static Policy policy() {
        return policy;
    }

    /** Sets the process-wide policy; returns the previous one (to restore it). */
    public static Policy setPolicy(Policy p) {
        if (p == null) {
            throw new IllegalArgumentException("policy must not be null");
        }
        Policy old = policy;
        policy = p;
        return old;
    }

    /**
     * Checks tensor {@code key} read from {@code source} (a file, or a description of one): does
     * nothing for a finite, empty or non-floating-point tensor; otherwise warns or throws, as the
     * {@link #policy()} says.
     *
     * @throws CheckpointException under {@link Policy#ERROR} when the tensor holds NaN or Inf
     */
    public static void check(INDArray a, String key, Object source) {
        if (a == null || !a.dataType().isFPType() || a.length() == 0) {
            return;
        }
        long bad = Nd4j.getExecutioner().exec(new MatchCondition(a, Conditions.notFinite())).getLong(0);
        if (bad == 0) {
            return;
        }
        long nan = Nd4j.getExecutioner().exec(new MatchCondition(a, Conditions.isNan())).getLong(0);
        String what = source + ": tensor '" + key + "' holds " + nan + " NaN and " + (bad - nan)
                + " infinite values (of " + a.length() + ")";
        if (policy == Policy.ERROR) {
            throw new CheckpointException(what + "; non-finite weights are refused (strict finite check on)");
        }
        LOG.warn("{} (a diverged or damaged checkpoint?)", what);
    }
}
