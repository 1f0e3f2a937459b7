package org.peft4j.core.train;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Expected values are written from Hugging Face's lambda formulas, evaluated by hand. */
class LrScheduleTest {
    private static final double BASE = 2e-3;

    @Test
    void constantWithWarmup() {
        LrSchedule s = LrSchedule.constant(BASE, 4);
        assertEquals(0.0, s.lr(0), 0);                 // warm-up starts at 0
        assertEquals(BASE * 0.25, s.lr(1), 1e-15);
        assertEquals(BASE * 0.75, s.lr(3), 1e-15);
        assertEquals(BASE, s.lr(4), 0);                // end of warm-up
        assertEquals(BASE, s.lr(1000), 0);
        assertEquals(BASE, LrSchedule.constant(BASE).lr(0), 0);
    }

    @Test
    void linearWithWarmup() {
        // warm-up 10, total 110: after warm-up lr = base·(110 − step)/100
        LrSchedule s = LrSchedule.linear(BASE, 10, 110);
        assertEquals(0.0, s.lr(0), 0);
        assertEquals(BASE * 0.5, s.lr(5), 1e-15);
        assertEquals(BASE, s.lr(10), 1e-15);           // end of warm-up: (110-10)/100 = 1
        assertEquals(BASE * 0.5, s.lr(60), 1e-15);     // middle
        assertEquals(BASE * 0.01, s.lr(109), 1e-15);   // last update
        assertEquals(0.0, s.lr(110), 0);               // end
        assertEquals(0.0, s.lr(500), 0);               // clamped at 0
    }

    @Test
    void cosineWithWarmup() {
        // warm-up 10, total 110: progress = (step − 10)/100, lr = base·½(1 + cos(π·progress))
        LrSchedule s = LrSchedule.cosine(BASE, 10, 110);
        assertEquals(0.0, s.lr(0), 0);
        assertEquals(BASE * 0.3, s.lr(3), 1e-15);
        assertEquals(BASE, s.lr(10), 1e-15);
        assertEquals(BASE * 0.5, s.lr(60), 1e-15);                                   // cos(π/2) = 0
        assertEquals(BASE * 0.5 * (1 + Math.cos(Math.PI * 0.25)), s.lr(35), 1e-15);  // 0.853553…·base
        assertEquals(BASE * 0.8535533905932737, s.lr(35), 1e-15);
        assertEquals(0.0, s.lr(110), 1e-18);                                         // cos(π) = −1
    }

    @Test
    void noWarmupStartsAtBase() {
        assertEquals(BASE, LrSchedule.linear(BASE, 0, 10).lr(0), 0);
        assertEquals(BASE, LrSchedule.cosine(BASE, 0, 10).lr(0), 0);
        assertEquals(BASE * 0.9, LrSchedule.linear(BASE, 0, 10).lr(1), 1e-15);
    }

    @Test
    void warmupRatioRoundsUp() {
        assertEquals(4, LrSchedule.warmupSteps(0, 0.1, 31));  // ceil(3.1)
        assertEquals(3, LrSchedule.warmupSteps(0, 0.1, 30));
        assertEquals(7, LrSchedule.warmupSteps(7, 0.5, 30));  // explicit steps win
        TrainingConfig c = TrainingConfig.builder().learningRate(1.0).warmupRatio(0.25).schedule(ScheduleType.LINEAR).build();
        LrSchedule s = c.lrSchedule(20);                      // warm-up 5
        assertEquals(0.4, s.lr(2), 1e-15);
        assertEquals(1.0, s.lr(5), 1e-15);
        assertEquals(7.0 / 15, s.lr(13), 1e-15);  // (20−13)/15
    }

    @Test
    void rejectsBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.linear(-1, 0, 10));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.linear(1, -1, 10));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.constant(1).lr(-1));
    }
}
