package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.tensor.Rng;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code peft4j distill} end to end on tiny models: the teacher recipe trained first, a narrower
 * one-layer student (hidden states matched through a projection) as LoRA and full model, labels
 * alone vs distilled; then a second run reusing the teacher and its cache.
 */
class DistillCommandTest {
    @TempDir
    static Path tmp;
    static Path config;
    static CliTestSupport.Run first;

    /**
     * The teacher recipe's output folder: a recipe file may only write inside the current folder
     * (an absolute output_dir in it is refused), so it lives under target/, cleared before the run.
     */
    static final Path TEACHER_RUN = Path.of("target", "distill-command-test", "teacher-run");

    @BeforeAll
    static void distill() throws Exception {
        CliTestSupport.deleteRecursively(TEACHER_RUN);
        Path teacherDir = CliTestSupport.copyModel("bert-tiny", tmp.resolve("teacher-model"));
        CliTestSupport.writeWordTokenizer(teacherDir, 50, true);
        Path studentDir = tmp.resolve("student-model");
        BertConfig sc = BertConfig.builder().vocabSize(50).hiddenSize(8).numHiddenLayers(1).numAttentionHeads(2)
                .intermediateSize(16).maxPositionEmbeddings(32).typeVocabSize(2).numLabels(2).build();
        new BertForSequenceClassification(sc, new Rng(3)).save(studentDir);
        CliTestSupport.writeWordTokenizer(studentDir, 50, true);
        Path train = tmp.resolve("train.jsonl");
        Path eval = tmp.resolve("eval.jsonl");
        Files.write(train, AdapterCommandsTest.tinyData(32, 1));
        Files.write(eval, AdapterCommandsTest.tinyData(12, 2));
        Path teacherRecipe = tmp.resolve("teacher.yaml");
        Files.writeString(teacherRecipe, """
                model: %s
                data: {train: %s, labels: [neg, pos], max_length: 16}
                peft: {peft_type: LORA, r: 4, lora_alpha: 8, lora_dropout: 0.0, target_modules: [query, value],
                       modules_to_save: [classifier]}
                training: {epochs: 2, batch_size: 8, learning_rate: 0.02, seed: 7}
                output_dir: %s
                """.formatted(teacherDir, train, TEACHER_RUN));
        config = tmp.resolve("distill.yaml");
        Files.writeString(config, """
                teacher: {recipe: %s}
                student:
                  model: %s
                  modes: [peft, full]
                  peft: {peft_type: LORA, r: 4, lora_alpha: 8, target_modules: [query, value], modules_to_save: [classifier]}
                data: {train: %s, eval: %s, labels: [neg, pos], max_length: 16}
                distill:
                  methods: [labels_only, kd]
                  k: [4]
                  pool: rest
                  temperature: 2.0
                  alpha: 0.5
                  layers: [[2, 1]]
                  hidden_loss: mse
                training: {max_steps: 3, batch_size: 8, learning_rate: 0.01, seed: 5}
                """.formatted(teacherRecipe, studentDir, train, eval));
        first = CliTestSupport.cli("distill", config.toString(), "--output-dir", tmp.resolve("out").toString());
    }

    @Test
    void writesEveryRunTheSummaryAndTheResolvedConfig() throws Exception {
        assertEquals(0, first.code(), first.toString());
        String out = first.out();
        assertTrue(out.contains("teacher: fine-tuning"), out);
        assertTrue(out.contains("teacher pass: batch"), out);
        assertTrue(out.contains("student") && out.contains("4 gold labels + 28 soft-labelled texts"), out);
        Path o = tmp.resolve("out");
        JsonNode summary = CliTestSupport.JSON.readTree(o.resolve("summary.json").toFile());
        assertEquals(4, summary.size(), summary.toString());
        for (JsonNode r : summary) {
            double acc = r.get("accuracy").asDouble();
            assertTrue(acc >= 0 && acc <= 1, r.toString());
            assertEquals(acc / r.get("teacher_accuracy").asDouble(), r.get("accuracy_ratio").asDouble(), 1e-9);
            assertEquals(3, r.get("steps").asInt(), r.toString());
            assertEquals(r.get("method").asText().equals("kd") ? 32 : 4, r.get("train_examples").asInt(), r.toString());
            Path run = o.resolve(r.get("run").asText());
            assertTrue(Files.isRegularFile(run.resolve("metrics.jsonl")), run.toString());
            assertTrue(Files.isRegularFile(run.resolve("eval_results.json")), run.toString());
            Path student = run.resolve("student");
            assertTrue(Files.isRegularFile(student.resolve(r.get("mode").asText().equals("peft")
                    ? "adapter_config.json" : "config.json")), student.toString());
            assertTrue(Files.isRegularFile(student.resolve(Classification.TASK_FILE)), student.toString());
            if (r.get("mode").asText().equals("full")) {
                // the full student is a self-contained model folder: predict takes it with its own tokenizer
                assertTrue(Files.isRegularFile(student.resolve("tokenizer.json")), student.toString());
                CliTestSupport.Run p = CliTestSupport.cli("predict", "--model", student.toString(), "--text", "w1 w2 w3");
                assertEquals(0, p.code(), p.toString());
                assertTrue(p.out().startsWith("neg") || p.out().startsWith("pos"), p.out());
            }
        }
        assertTrue(Files.isRegularFile(o.resolve("teacher_cache-rest-hidden.safetensors")));
        JsonNode resolved = TrainRecipe.yaml().readTree(o.resolve("resolved_config.yaml").toFile());
        assertEquals(0.5, resolved.at("/distill/alpha").asDouble(), 0);
        assertEquals(5, resolved.at("/distill/seed").asInt());
        assertEquals("mse", resolved.at("/distill/hidden_loss").asText());
        assertEquals(2, resolved.at("/distill/layers/0/0").asInt());
        assertTrue(resolved.at("/teacher/adapter").asText().endsWith("adapter"), resolved.toString());
    }

    @Test
    void aSecondRunReusesTheTeacherAndItsCache() throws Exception {
        assertEquals(0, first.code(), first.toString());
        Path out2 = tmp.resolve("out2");
        Files.createDirectories(out2);
        Files.copy(tmp.resolve("out").resolve("teacher_cache-rest-hidden.safetensors"),
                out2.resolve("teacher_cache-rest-hidden.safetensors"));
        CliTestSupport.Run r = CliTestSupport.cli("distill", config.toString(), "--output-dir", out2.toString(),
                "--set", "distill.methods=[kd]", "--set", "student.modes=[peft]");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("teacher: reusing"), r.out());
        assertTrue(r.out().contains("teacher pass: reusing"), r.out());
        assertEquals(1, CliTestSupport.JSON.readTree(out2.resolve("summary.json").toFile()).size());
    }

    @Test
    void aPoolFileAddsOnlyTextsNotAlreadyInTrainOrEval() throws Exception {
        List<String> train = AdapterCommandsTest.tinyData(32, 1);
        List<String> eval = AdapterCommandsTest.tinyData(12, 2);
        List<String> extra = AdapterCommandsTest.tinyData(10, 99);
        Set<String> seen = new HashSet<>(train);
        seen.addAll(eval);
        long fresh = extra.stream().filter(seen::add).count();
        List<String> pool = new ArrayList<>(train);
        pool.addAll(eval);
        pool.addAll(extra);
        Path poolFile = tmp.resolve("pool.jsonl");
        Files.write(poolFile, pool);
        CliTestSupport.Run r = CliTestSupport.cli("distill", config.toString(), "--output-dir", tmp.resolve("out4").toString(),
                "--set", "distill.pool=" + poolFile, "--set", "distill.methods=[kd]", "--set", "student.modes=[full]");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("4 gold labels + " + (28 + fresh) + " soft-labelled texts"), r.out());
    }

    @Test
    void aStudentWithAnotherVocabularyIsAClearError() throws Exception {
        Path other = tmp.resolve("student-other-vocab");
        BertConfig sc = BertConfig.builder().vocabSize(40).hiddenSize(8).numHiddenLayers(1).numAttentionHeads(2)
                .intermediateSize(16).maxPositionEmbeddings(32).typeVocabSize(2).numLabels(2).build();
        new BertForSequenceClassification(sc, new Rng(3)).save(other);
        CliTestSupport.writeWordTokenizer(other, 40, true);
        CliTestSupport.Run r = CliTestSupport.cli("distill", config.toString(), "--output-dir", tmp.resolve("out3").toString(),
                "--set", "student.model=" + other, "--set", "distill.methods=[kd]", "--set", "student.modes=[full]");
        assertTrue(r.code() != 0, r.toString());
        assertTrue(r.err().contains("vocabularies differ") || r.err().contains("tokenize differently"), r.toString());
    }
}
