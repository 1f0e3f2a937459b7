package org.peft4j.core.train;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainingConfigTest {

    private static void rejects(String field, Consumer<TrainingConfig.Builder> change) {
        TrainingConfig.Builder b = TrainingConfig.builder();
        change.accept(b);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, b::build);
        assertTrue(e.getMessage().contains("TrainingConfig." + field + " "), e.getMessage());
    }

    @Test
    void validationNamesTheField() {
        rejects("batchSize", b -> b.batchSize(0));
        rejects("gradientAccumulationSteps", b -> b.gradientAccumulationSteps(0));
        rejects("learningRate", b -> b.learningRate(0));
        rejects("learningRate", b -> b.learningRate(Double.NaN));
        rejects("maxGradNorm", b -> b.maxGradNorm(-1));
        rejects("weightDecay", b -> b.weightDecay(-0.1));
        rejects("warmupRatio", b -> b.warmupRatio(1.5));
        rejects("warmupSteps", b -> b.warmupSteps(-1));
        rejects("epochs", b -> b.epochs(0));
        rejects("logInterval", b -> b.logInterval(0));
        rejects("evalInterval", b -> b.evalInterval(-1));
        rejects("checkpointInterval", b -> b.checkpointInterval(-2));
        rejects("schedule", b -> b.schedule(null));
        rejects("adamBeta2", b -> b.adamBetas(0.9, 1.0));
        rejects("earlyStoppingMetric", b -> b.earlyStopping(" ", 2, false));
        rejects("earlyStoppingPatience", b -> b.earlyStoppingPatience(-1));
    }

    @Test
    void stepsAndWarmup() {
        TrainingConfig c = TrainingConfig.builder().epochs(3).gradientAccumulationSteps(4).warmupRatio(0.1).build();
        assertEquals(3, c.stepsPerEpoch(10));   // ceil(10/4): the partial group still updates
        assertEquals(9, c.totalSteps(10));
        assertEquals(1, c.warmupSteps(9));      // ceil(0.9)
        TrainingConfig m = c.toBuilder().maxSteps(50).epochs(0).build();
        assertEquals(50, m.totalSteps(10));
    }

    @Test
    void jsonRoundTrip() {
        TrainingConfig c = TrainingConfig.builder().epochs(2).maxSteps(17).batchSize(4).gradientAccumulationSteps(2)
                .maxGradNorm(0.5).learningRate(3e-4).weightDecay(0.01).warmupSteps(3).schedule(ScheduleType.COSINE)
                .optimizer(OptimizerType.SGD).sgdMomentum(0.8).adamBetas(0.85, 0.99).adamEpsilon(1e-6)
                .evalInterval(5).logInterval(2).seed(123456789012345L).outputDir(Path.of("/tmp/run"))
                .checkpointInterval(4).keepCheckpoints(3).earlyStopping("accuracy", 2, true)
                .earlyStoppingThreshold(0.001).build();
        assertEquals(c, TrainingConfig.fromJson(c.toJson()));
        assertEquals("cosine", c.toJson().get("schedule").asText());
        assertThrows(IllegalArgumentException.class,
                () -> TrainingConfig.fromJson(c.toJson().put("bogus", 1)));
    }
}
