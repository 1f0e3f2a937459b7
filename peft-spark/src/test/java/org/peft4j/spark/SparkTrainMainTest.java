package org.peft4j.spark;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftModel;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The spark-submit entry point on a peft4j train YAML: JSON-lines token ids in, a PEFT folder and metrics out. */
class SparkTrainMainTest {

    @AfterAll
    static void clear() {
        Replicas.clear();
    }

    @Test
    void yamlRecipeTrainsAndWritesAnAdapterFolder(@TempDir Path tmp) throws Exception {
        List<String> lines = new ArrayList<>();
        for (int[] ids : SparkTestSupport.ids(40, 3)) {
            lines.add("{\"input_ids\":" + java.util.Arrays.toString(ids) + ",\"label\":" + SparkTestSupport.label(ids) + "}");
        }
        Path data = Files.write(tmp.resolve("train.jsonl"), lines);
        Path out = tmp.resolve("run");
        Path yaml = Files.writeString(tmp.resolve("tiny.yaml"), """
                model: %s
                task: sequence_classification
                data:
                  train: %s
                  text_field: input_ids
                  labels: [neg, pos]
                  max_length: 32
                peft:
                  peft_type: LORA
                  r: 2
                  lora_alpha: 4
                  target_modules: [query, value]
                  modules_to_save: [classifier]
                training:
                  max_steps: 3
                  batch_size: 8
                  learning_rate: 1.0e-2
                  checkpoint_interval: 2
                  seed: 5
                output_dir: %s
                spark:
                  master: local[2]
                  num_tasks: 2
                  exchange: aggregate
                """.formatted(SparkTestSupport.tinyBert(), data, out));
        SparkTrainMain.main(new String[]{yaml.toString()});

        Path adapter = out.resolve("adapter");
        PeftConfig cfg = PeftConfig.load(adapter);
        assertEquals("LORA", cfg.peftType());
        assertTrue(Files.size(adapter.resolve(PeftModel.WEIGHTS_NAME)) > 0);
        JsonNode task = JsonFiles.read(adapter.resolve("peft4j_task.json"));
        assertEquals("pos", task.path("labels").get(1).asText());
        JsonNode m = JsonFiles.read(out.resolve("spark_metrics.json"));
        assertEquals(3, m.path("steps").asInt());
        assertEquals(3, m.path("losses").size());
        assertEquals("aggregate", m.path("exchange").asText());
        // r 2 on query/value of 2 layers (hidden 16) + classifier 16·2+2
        assertEquals(2 * 2 * (2 * 16 + 16 * 2) + 34, m.path("trainable_values").asInt());
        assertTrue(Files.isRegularFile(out.resolve("checkpoints/checkpoint-2/state.json")), "checkpoint every 2 steps, default dir");
        assertTrue(Files.isRegularFile(out.resolve("checkpoints/checkpoint-3/state.json")), "and at the end");
    }
}
