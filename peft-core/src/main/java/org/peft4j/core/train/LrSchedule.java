package org.peft4j.core.train;

/**
 * The learning rate for each optimizer update, indexed by the number of updates already done
 * ({@code step = 0} is the first update), exactly as a PyTorch {@code LambdaLR} built by Hugging
 * Face's {@code get_*_schedule_with_warmup} helpers hands it to the optimizer.
 *
 * <p>Warm-up is linear from 0: {@code lr(step) = base · step / max(1, warmup)} for
 * {@code step < warmup}, so with warm-up the very first update uses a rate of 0, as in
 * Hugging Face. After warm-up:
 * <ul>
 *   <li>constant: {@code base};</li>
 *   <li>linear: {@code base · max(0, (total − step) / max(1, total − warmup))};</li>
 *   <li>cosine: {@code base · max(0, ½(1 + cos(π · 2 · cycles · progress)))} with
 *       {@code progress = (step − warmup) / max(1, total − warmup)} and {@code cycles = 0.5}.</li>
 * </ul>
 * Schedules are pure functions of the step, so a resumed run only needs the step count.
 */
@FunctionalInterface
public interface LrSchedule {

    /** The learning rate to use for update number {@code step} (0-based). */
    double lr(long step);

    /** A constant rate with no warm-up. */
    static LrSchedule constant(double baseLr) {
        return constant(baseLr, 0);
    }

    static LrSchedule constant(double baseLr, long warmupSteps) {
        check(baseLr, warmupSteps, Long.MAX_VALUE);
        return step -> {
            checkStep(step);
            if (step < warmupSteps) {
                return baseLr * ((double) step / Math.max(1.0, warmupSteps));
            }
            return baseLr;
        };
    }

    static LrSchedule linear(double baseLr, long warmupSteps, long totalSteps) {
        check(baseLr, warmupSteps, totalSteps);
        return step -> {
            checkStep(step);
            if (step < warmupSteps) {
                return baseLr * ((double) step / Math.max(1.0, warmupSteps));
            }
            double f = (double) (totalSteps - step) / Math.max(1.0, totalSteps - warmupSteps);
            return baseLr * Math.max(0.0, f);
        };
    }

    static LrSchedule cosine(double baseLr, long warmupSteps, long totalSteps) {
        return cosine(baseLr, warmupSteps, totalSteps, 0.5);
    }

    /** Cosine with {@code numCycles} periods after warm-up (0.5 = a single decay to 0). */
    static LrSchedule cosine(double baseLr, long warmupSteps, long totalSteps, double numCycles) {
        check(baseLr, warmupSteps, totalSteps);
        if (!(numCycles > 0) || Double.isInfinite(numCycles)) {
            throw new IllegalArgumentException("numCycles must be positive and finite: " + numCycles);
        }
        return step -> {
            checkStep(step);
            if (step < warmupSteps) {
                return baseLr * ((double) step / Math.max(1.0, warmupSteps));
            }
            double progress = (double) (step - warmupSteps) / Math.max(1.0, totalSteps - warmupSteps);
            return baseLr * Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * numCycles * 2.0 * progress)));
        };
    }

    /** The schedule of the given type ({@code totalSteps} is ignored by CONSTANT). */
    static LrSchedule of(ScheduleType type, double baseLr, long warmupSteps, long totalSteps) {
        if (type == null) {
            throw new IllegalArgumentException("schedule type must not be null");
        }
        return switch (type) {
            case CONSTANT -> constant(baseLr, warmupSteps);
            case LINEAR -> linear(baseLr, warmupSteps, totalSteps);
            case COSINE -> cosine(baseLr, warmupSteps, totalSteps);
        };
    }

    /** Hugging Face's rule: explicit warm-up steps win; otherwise {@code ceil(ratio · total)}. */
    static long warmupSteps(long warmupSteps, double warmupRatio, long totalSteps) {
        if (warmupSteps > 0) {
            return warmupSteps;
        }
        return (long) Math.ceil(warmupRatio * totalSteps);
    }

    private static void check(double baseLr, long warmupSteps, long totalSteps) {
        if (!(baseLr >= 0) || Double.isInfinite(baseLr)) {
            throw new IllegalArgumentException("learning rate must be finite and >= 0: " + baseLr);
        }
        if (warmupSteps < 0) {
            throw new IllegalArgumentException("warmupSteps must be >= 0: " + warmupSteps);
        }
        if (totalSteps < 0) {
            throw new IllegalArgumentException("totalSteps must be >= 0: " + totalSteps);
        }
    }

    private static void checkStep(long step) {
        if (step < 0) {
            throw new IllegalArgumentException("schedule step must be >= 0: " + step);
        }
    }
}
