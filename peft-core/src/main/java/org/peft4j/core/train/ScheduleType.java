package org.peft4j.core.train;

/** The shape of the learning-rate curve after the linear warm-up (see {@link LrSchedule}). */
public enum ScheduleType {
    /** Stays at the base rate after warm-up ({@code get_constant_schedule_with_warmup}). */
    CONSTANT,
    /** Decays linearly to 0 at the last step ({@code get_linear_schedule_with_warmup}). */
    LINEAR,
    /** Half a cosine from the base rate to 0 ({@code get_cosine_schedule_with_warmup}, 0.5 cycles). */
    COSINE
}
