package org.peft4j.core.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.MissingNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code trainer_state.json} as a {@link TrainerState}: the format's keys, the round trip, defaults and pruning. */
class TrainerCheckpointTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private static TrainerState sample() throws Exception {
        Map<String, Double> metrics = new LinkedHashMap<>();
        metrics.put("eval_loss", 0.5);
        metrics.put("accuracy", Double.NaN);
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("fc.weight", new long[]{3, 2});
        shapes.put("fc.bias", new long[]{3});
        Map<String, Long> steps = new LinkedHashMap<>();
        steps.put("fc.weight", 7L);
        steps.put("fc.bias", 7L);
        return new TrainerState(7, 1, 2, 18, 12,
                new TrainerState.LoaderState(77, true, 8, false, 12, 90), List.of(42L, -5L),
                "adamw", 0.25, steps, new TrainerState.LogWindow(1.5, 1, 40), 5, metrics,
                Map.of("early_stopping", JSON.readTree("{\"best\":0.5,\"bad_evals\":0}")), shapes,
                JSON.readTree("{\"seed\":77}"));
    }

    /** The key order and layout every checkpoint written so far has (format version 1). */
    @Test
    void stateIsWrittenInTheVersionOneLayout() throws Exception {
        String expected = "{\"format\":\"peft4j-trainer-checkpoint\",\"version\":1,\"global_step\":7,\"epoch\":1,"
                + "\"batch_in_epoch\":2,\"schedule_step\":7,\"total_steps\":18,\"num_batches\":12,"
                + "\"loader\":{\"seed\":77,\"shuffle\":true,\"batch_size\":8,\"drop_last\":false,\"num_batches\":12,\"dataset_size\":90},"
                + "\"rng_states\":[42,-5],"
                + "\"optimizer\":{\"type\":\"adamw\",\"learning_rate\":0.25,\"steps\":{\"fc.weight\":7,\"fc.bias\":7}},"
                + "\"log_window\":{\"loss_sum\":1.5,\"steps\":1,\"tokens\":40},"
                + "\"last_eval_step\":5,\"last_eval_metrics\":{\"eval_loss\":0.5,\"accuracy\":null},"
                + "\"listeners\":{\"early_stopping\":{\"best\":0.5,\"bad_evals\":0}},"
                + "\"parameters\":{\"fc.weight\":[3,2],\"fc.bias\":[3]},"
                + "\"config\":{\"seed\":77}}";
        assertEquals(expected, JSON.writeValueAsString(TrainerCheckpoint.toJson(sample())));
    }

    @Test
    void stateSurvivesTheRoundTrip() throws Exception {
        TrainerState a = sample();
        TrainerState b = TrainerCheckpoint.fromJson(TrainerCheckpoint.toJson(a));
        assertEquals(a.globalStep(), b.globalStep());
        assertEquals(a.epoch(), b.epoch());
        assertEquals(a.batchInEpoch(), b.batchInEpoch());
        assertEquals(a.totalSteps(), b.totalSteps());
        assertEquals(a.numBatches(), b.numBatches());
        assertEquals(a.loader(), b.loader());
        assertEquals(a.rngStates(), b.rngStates());
        assertEquals(a.optimizerType(), b.optimizerType());
        assertEquals(a.learningRate(), b.learningRate(), 0.0);
        assertEquals(a.optimizerSteps(), b.optimizerSteps());
        assertEquals(a.logWindow(), b.logWindow());
        assertEquals(a.lastEvalStep(), b.lastEvalStep());
        assertEquals(a.lastEvalMetrics(), b.lastEvalMetrics(), "NaN comes back as NaN (written as null)");
        assertEquals(a.listenerStates(), b.listenerStates());
        assertEquals(a.parameterShapes().keySet(), b.parameterShapes().keySet());
        assertArrayEquals(a.parameterShapes().get("fc.weight"), b.parameterShapes().get("fc.weight"));
        assertEquals(a.config(), b.config());
    }

    @Test
    void absentEntriesReadAsNothingYet() throws Exception {
        TrainerState s = TrainerCheckpoint.fromJson(JSON.readTree(
                "{\"format\":\"peft4j-trainer-checkpoint\",\"version\":1,\"loader\":null,\"optimizer\":{\"type\":\"sgd\"}}"));
        assertEquals(0, s.globalStep());
        assertNull(s.loader());
        assertEquals(List.of(), s.rngStates());
        assertTrue(Double.isNaN(s.learningRate()));
        assertEquals(TrainerState.LogWindow.EMPTY, s.logWindow());
        assertEquals(-1, s.lastEvalStep());
        assertTrue(s.config().isMissingNode());
        ObjectNode again = TrainerCheckpoint.toJson(s);
        assertTrue(!again.path("optimizer").has("learning_rate") && !again.has("config"), again.toString());
    }

    @Test
    void writeThenReadGivesStateParametersAndOptimizerTensors() throws Exception {
        Path dir = tmp.resolve(TrainerCheckpoint.folderName(7));
        INDArray w = Nd4j.createFromArray(new float[][]{{1, 2}, {3, 4}, {5, 6}});
        INDArray m = Nd4j.createFromArray(new float[][]{{0.5f, 0}, {0, 0}, {0, -0.5f}});
        TrainerCheckpoint.write(dir, sample(), Map.of("fc.weight", w), Map.of("fc.weight.exp_avg", m));
        assertEquals(List.of(dir), TrainerCheckpoint.list(tmp));
        assertEquals(7, TrainerCheckpoint.readTrainerState(dir).globalStep());
        assertEquals(w, TrainerCheckpoint.readParameters(dir).get("fc.weight"));
        assertEquals(m, TrainerCheckpoint.readOptimizerTensors(dir).get("fc.weight.exp_avg"));
        JsonNode raw = JSON.readTree(dir.resolve(TrainerCheckpoint.STATE_FILE).toFile());
        // the same text (read-back numbers are ints where the state holds longs, so compare as written)
        assertEquals(JSON.writeValueAsString(TrainerCheckpoint.toJson(sample())), JSON.writeValueAsString(raw));
    }

    @Test
    void pruneDeletesTheOldestButNeverTheKeptOne() throws Exception {
        for (long step : new long[]{2, 4, 6, 8}) {
            TrainerCheckpoint.write(tmp.resolve(TrainerCheckpoint.folderName(step)), sample(), Map.of(), Map.of());
        }
        // keep checkpoint-2 (e.g. the one just written by a resumed run) and two in total
        TrainerCheckpoint.prune(tmp, tmp.resolve("checkpoint-2"), 2);
        assertEquals(List.of(tmp.resolve("checkpoint-2"), tmp.resolve("checkpoint-8")), TrainerCheckpoint.list(tmp));
        TrainerCheckpoint.prune(tmp, tmp.resolve("checkpoint-8"), 0);
        assertEquals(2, TrainerCheckpoint.list(tmp).size(), "limit 0 keeps every checkpoint");
        assertTrue(Files.isDirectory(tmp.resolve("checkpoint-8")));
    }

    @Test
    void differencesNameWhatChanged() throws Exception {
        TrainingConfig now = TrainingConfig.builder().batchSize(8).seed(78).learningRate(1e-3).build();
        TrainerState saved = new TrainerState(0, 0, 0, 0, 0, null, List.of(), "adamw", Double.NaN, Map.of(),
                TrainerState.LogWindow.EMPTY, -1, Map.of(), Map.of(), Map.of(), now.toBuilder().seed(77).build().toJson());
        assertEquals(List.of("seed: 77 -> 78"), saved.configDifferences(now));
        TrainerState unknown = new TrainerState(0, 0, 0, 0, 0, null, List.of(), "adamw", Double.NaN, Map.of(),
                TrainerState.LogWindow.EMPTY, -1, Map.of(), Map.of(), Map.of(), MissingNode.getInstance());
        assertEquals(List.of(), unknown.configDifferences(now));

        DataLoader<Example> loader = DataLoader.builder(Dataset.of(SyntheticData.examples(20, 1)), PaddingCollator.<Example>dynamic(0))
                .batchSize(8).shuffle(true).seed(5).build();
        TrainerState.LoaderState same = TrainerState.LoaderState.of(loader);
        assertEquals(new TrainerState.LoaderState(5, true, 8, false, 3, 20), same);
        assertEquals(List.of(), same.differences(loader));
        assertEquals(List.of("seed 6 -> 5", "dataset size 21 -> 20"),
                new TrainerState.LoaderState(6, true, 8, false, 3, 21).differences(loader));
    }
}
