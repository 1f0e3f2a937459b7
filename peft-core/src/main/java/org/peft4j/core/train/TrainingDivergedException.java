package org.peft4j.core.train;

/**
 * Training produced a non-finite loss or gradient norm. Nothing was applied for the failing
 * update, no checkpoint was written after it, and the last checkpoint (if any) is intact.
 */
public final class TrainingDivergedException extends RuntimeException {
    private final long step;
    private final String quantity;
    private final double value;

    /**
     * @param step     1-based number of the optimizer update that failed
     * @param quantity what was non-finite ({@code loss} or {@code grad_norm})
     * @param value    its value
     */
    public TrainingDivergedException(long step, String quantity, double value, String detail) {
        super("training diverged at step " + step + ": " + quantity + " is " + value
                + (detail == null || detail.isEmpty() ? "" : " (" + detail + ")")
                + "; no update was applied and the last checkpoint is intact");
        this.step = step;
        this.quantity = quantity;
        this.value = value;
    }

    public long step() {
        return step;
    }

    public String quantity() {
        return quantity;
    }

    public double value() {
        return value;
    }
}
