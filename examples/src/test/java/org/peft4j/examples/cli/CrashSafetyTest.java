package org.peft4j.examples.cli;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.train.TrainerCheckpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Crash safety of everything {@code peft4j} writes, with real SIGKILLs: the command runs in a child
 * JVM that is killed ({@link Process#destroyForcibly()}, SIGKILL on Linux) while it writes trainer
 * checkpoints, the adapter folder or a merged export; every folder must then load completely.
 * And {@code train --resume} after a kill gives an adapter bit-identical to a run never
 * interrupted (LoRA dropout, shuffled batches and gradient accumulation all on).
 *
 * <p>Iterations per kind: {@code -Dpeft4j.killloop.iterations=N} (default 4); survivors are
 * appended to {@code examples/target/kill-loop-report.txt}.
 */
class CrashSafetyTest {
    @TempDir
    static Path tmp;
    static Path bertDir;
    static Path configFile;

    @BeforeAll
    static void setUp() throws Exception {
        bertDir = CliTestSupport.copyModel("bert-tiny", tmp.resolve("bert-tiny"));
        CliTestSupport.writeWordTokenizer(bertDir, 50, true);
        Path trainData = tmp.resolve("train.jsonl");
        Files.write(trainData, AdapterCommandsTest.tinyData(64, 3));
        configFile = tmp.resolve("resume.yaml");
        // 64 examples, batch 4, 2 micro-batches per update: 8 updates per epoch, 12 epochs, a checkpoint every 4
        Files.writeString(configFile, """
                model: %s
                task: sequence_classification
                data:
                  train: %s
                  labels: [neg, pos]
                  max_length: 16
                peft:
                  peft_type: LORA
                  r: 4
                  lora_alpha: 8
                  lora_dropout: 0.2
                  target_modules: [query, value]
                  modules_to_save: [classifier]
                training:
                  epochs: 12
                  batch_size: 4
                  gradient_accumulation_steps: 2
                  learning_rate: 0.01
                  checkpoint_interval: 4
                  keep_checkpoints: 3
                  log_interval: 100
                  seed: 11
                """.formatted(bertDir, trainData));
    }

    /** The command line in a child JVM with the launcher's memory limits; output to {@code log}. */
    static Process child(Path log, String... args) throws IOException {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx768m", "-Dorg.bytedeco.javacpp.maxbytes=2g", "-Dorg.bytedeco.javacpp.maxphysicalbytes=3g",
                "-XX:+UseSerialGC", "-cp", cp, Peft4jCli.class.getName()));
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    @Test
    void resumeAfterSigkillGivesABitIdenticalAdapter() throws Exception {
        // every run in a child JVM with the same settings, so only the interruption differs
        Path whole = tmp.resolve("uninterrupted");
        Process a = child(tmp.resolve("whole.log"), "train", configFile.toString(), "--output-dir", whole.toString());
        assertEquals(0, a.waitFor(), Files.readString(tmp.resolve("whole.log")));

        Path again = tmp.resolve("uninterrupted-again");
        Process a2 = child(tmp.resolve("again.log"), "train", configFile.toString(), "--output-dir", again.toString());
        assertEquals(0, a2.waitFor(), Files.readString(tmp.resolve("again.log")));
        assertArrayEquals(Files.readAllBytes(whole.resolve("adapter").resolve(PeftModel.WEIGHTS_NAME)),
                Files.readAllBytes(again.resolve("adapter").resolve(PeftModel.WEIGHTS_NAME)),
                "two uninterrupted runs in fresh processes must agree bit for bit");

        Path killed = tmp.resolve("killed");
        Process p = child(tmp.resolve("killed.log"), "train", configFile.toString(), "--output-dir", killed.toString());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        Optional<Path> latest = Optional.empty();
        while (p.isAlive() && System.nanoTime() < deadline
                && (latest = TrainerCheckpoint.latest(killed)).map(c -> TrainerCheckpoint.readTrainerState(c).globalStep() < 8)
                .orElse(true)) {
            Thread.sleep(5);
        }
        assertTrue(p.isAlive(), "the run must still be training when it is killed: " + Files.readString(tmp.resolve("killed.log")));
        p.destroyForcibly().waitFor();
        assertFalse(Files.exists(killed.resolve("adapter")), "killed before the adapter was saved");
        long stepAtKill = TrainerCheckpoint.readTrainerState(TrainerCheckpoint.latest(killed).orElseThrow()).globalStep();

        Process b = child(tmp.resolve("resumed.log"), "train", configFile.toString(), "--output-dir", killed.toString(),
                "--resume");
        String resumedLog = Files.readString(tmp.resolve("resumed.log"));
        assertEquals(0, b.waitFor(), resumedLog);
        resumedLog = Files.readString(tmp.resolve("resumed.log"));
        assertTrue(resumedLog.contains("resuming from"), resumedLog);
        for (String l : List.of("whole.log", "killed.log", "resumed.log")) {
            Files.copy(tmp.resolve(l), Path.of("target", "resume-" + l), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        byte[] expected = Files.readAllBytes(whole.resolve("adapter").resolve(PeftModel.WEIGHTS_NAME));
        byte[] got = Files.readAllBytes(killed.resolve("adapter").resolve(PeftModel.WEIGHTS_NAME));
        assertArrayEquals(expected, got, "resumed adapter differs from the uninterrupted one");
        Files.writeString(Path.of("target", "kill-loop-report.txt"), String.format(Locale.ROOT,
                "resume: killed at/after checkpoint step %d of %d, resumed: adapter bit-identical (%d bytes)%n",
                stepAtKill, 96, got.length), StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    @Test
    void sigkillDuringTrainingCheckpointsAdapterSaveAndMergeLeavesCompleteFolders() throws Exception {
        int iterations = Integer.getInteger("peft4j.killloop.iterations", 4);
        Rng rng = new Rng(20261203L);
        Path run = tmp.resolve("loop-train");
        Path merged = tmp.resolve("loop-merged");

        // one uninterrupted run of each, timed, so kills land inside the writing part
        long t0 = System.nanoTime();
        Process full = child(tmp.resolve("full-train.log"), "train", configFile.toString(), "--output-dir", run.toString());
        assertEquals(0, full.waitFor(), Files.readString(tmp.resolve("full-train.log")));
        double trainSeconds = (System.nanoTime() - t0) / 1e9;
        Path adapter = run.resolve("adapter");
        t0 = System.nanoTime();
        Process fullMerge = child(tmp.resolve("full-merge.log"), "merge", "--model", bertDir.toString(), "--adapter",
                adapter.toString(), "--out", merged.toString());
        assertEquals(0, fullMerge.waitFor(), Files.readString(tmp.resolve("full-merge.log")));
        double mergeSeconds = (System.nanoTime() - t0) / 1e9;
        int mergedTensors = HfFolder.readWeights(merged).size();

        int trainKills = 0;
        int mergeKills = 0;
        // checkpoints resumed, adapter folders loaded, merged exports loaded, older checkpoints read
        int[] loaded = new int[4];
        for (int i = 0; i < iterations; i++) {
            // training again into the same folder (from the start, over the old checkpoints and adapter)
            Process p = child(tmp.resolve("train-" + i + ".log"), "train", configFile.toString(), "--output-dir",
                    run.toString());
            if (killAt(p, trainSeconds * (0.4 + 0.6 * rng.nextDouble()))) {
                trainKills++;
            }
            checkTrainingFolder(run, i, loaded);

            Process m = child(tmp.resolve("merge-" + i + ".log"), "merge", "--model", bertDir.toString(), "--adapter",
                    adapter.toString(), "--out", merged.toString());
            if (killAt(m, mergeSeconds * (0.3 + 0.6 * rng.nextDouble()))) {
                mergeKills++;
            }
            AtomicFiles.recover(merged);
            assertEquals(mergedTensors, HfFolder.readWeights(merged).size(), "merged export after kill " + i);
            HfFolder.readConfig(merged);
            assertTrue(Files.isRegularFile(merged.resolve("tokenizer.json")), "tokenizer.json after kill " + i);
            // loaded as a model: the merged classification folder predicts on its own
            CliTestSupport.Run pr = CliTestSupport.cli("predict", "--model", merged.toString(), "--text", "w4 w5 w6");
            assertEquals(0, pr.code(), "merged export after kill " + i + " loads as a model: " + pr);
            loaded[2]++;
        }
        String line = String.format(Locale.ROOT, "kill loop: %d iterations each; train: %d killed mid-run, %d newest"
                        + " trainer checkpoints resumed from (train --resume) and %d older ones read completely, %d adapter"
                        + " folders loaded onto the model (predict); merge export: %d killed mid-run, %d exports loaded as a"
                        + " model (predict)%n",
                iterations, trainKills, loaded[0], loaded[3], loaded[1], mergeKills, loaded[2]);
        Files.writeString(Path.of("target", "kill-loop-report.txt"), line, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        System.out.print(line);
        assertTrue(trainKills + mergeKills > 0, "no kill landed while a process was running");
    }

    /** Sleeps {@code seconds}, then SIGKILLs {@code p}; true if it was still running. */
    private static boolean killAt(Process p, double seconds) throws InterruptedException {
        boolean finished = p.waitFor((long) (seconds * 1000), TimeUnit.MILLISECONDS);
        if (finished) {
            return false;
        }
        p.destroyForcibly().waitFor();
        return true;
    }

    /**
     * Every checkpoint and the adapter folder (when there) of {@code run} reads completely and
     * loads: the newest checkpoint — the one {@code --resume} picks — is resumed from by the real
     * command line (alone in a scratch output folder, one more update: parameters, optimizer state, schedule, data order and dropout
     * generators restored onto a fresh model; older ones are read completely), and the adapter is loaded onto the model by
     * {@code predict} (PeftModel's loader, every key and shape checked).
     */
    private static void checkTrainingFolder(Path run, int iteration, int[] loaded) throws IOException {
        if (!Files.isDirectory(run)) {
            return;
        }
        List<Path> checkpoints = new ArrayList<>();
        try (Stream<Path> s = Files.list(run)) {
            for (Path c : (Iterable<Path>) s::iterator) {
                String n = c.getFileName().toString();
                if (n.startsWith("checkpoint-") && Files.isDirectory(c)) {
                    checkpoints.add(c);
                }
            }
        }
        for (Path c : checkpoints) {
            AtomicFiles.recover(c);
        }
        Optional<Path> newest = TrainerCheckpoint.latest(run);
        for (Path c : checkpoints) {
            long step = TrainerCheckpoint.readTrainerState(c).globalStep();
            assertFalse(TrainerCheckpoint.readParameters(c).isEmpty(), c.toString());
            TrainerCheckpoint.readOptimizerTensors(c);
            if (!newest.map(c::equals).orElse(false)) {
                loaded[3]++;   // older ones: read completely (resume would never pick them)
                continue;
            }
            Path scratch = tmp.resolve("resume-check-" + iteration + "-" + c.getFileName());
            copyTree(c, scratch.resolve(c.getFileName().toString()));
            CliTestSupport.Run r = CliTestSupport.cli("train", configFile.toString(), "--output-dir", scratch.toString(),
                    "--resume", "--set", "training.max_steps=" + (step + 1));
            assertEquals(0, r.code(), c + " after kill " + iteration + " resumes: " + r);
            assertTrue(r.out().contains("resuming from " + scratch.resolve(c.getFileName().toString())), r.out());
            loaded[0]++;
            AtomicFiles.deleteRecursively(scratch);
        }
        Path adapter = run.resolve("adapter");
        AtomicFiles.recover(adapter);
        if (Files.exists(adapter)) {
            PeftConfig.load(adapter);
            assertFalse(SafeTensors.load(adapter.resolve(PeftModel.WEIGHTS_NAME)).isEmpty(), adapter.toString());
            CliTestSupport.Run r = CliTestSupport.cli("predict", "--model", bertDir.toString(), "--adapter",
                    adapter.toString(), "--text", "w4 w5 w6");
            assertEquals(0, r.code(), "adapter after kill " + iteration + " loads onto the model: " + r);
            loaded[1]++;
        }
    }

    private static void copyTree(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (Stream<Path> s = Files.list(from)) {
            for (Path f : (Iterable<Path>) s::iterator) {
                if (Files.isDirectory(f)) {
                    copyTree(f, to.resolve(f.getFileName().toString()));
                } else {
                    Files.copy(f, to.resolve(f.getFileName().toString()));
                }
            }
        }
    }
}
