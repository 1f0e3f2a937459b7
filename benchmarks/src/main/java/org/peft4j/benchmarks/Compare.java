package org.peft4j.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.model.bert.BertConfig;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.LocalDate;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The side-by-side comparison harness (see benchmarks/README.md for the command).
 *
 * <p>In one run it starts one process per measured mode — peft4j full fine-tuning, LoRA and
 * QLoRA training, PyTorch full and LoRA training ({@code scripts/bench/torch_minilm.py}), peft4j
 * inference (base, unmerged LoRA, merged LoRA), onnxruntime inference, PyTorch inference and a
 * GEMM-rate probe — all on the same MiniLM-L6 weights and batch, each warmed up and then idle.
 * It then runs {@code rounds} rounds; in every round each mode runs a few timed steps in turn (the
 * order rotates from round to round), so slow drift of a shared machine hits all modes alike and
 * the A/B ratios are taken within a round. Finally it reads each training process's peak resident
 * memory, runs the 1,000-step leak check, prints one table of ratios and writes everything as JSON.
 */
public final class Compare {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** JVM flags of the peft4j worker processes (see the README for why each is there). */
    static final String DEFAULT_JVM = "-Xmx2g -Xmn64m -XX:+UseParallelGC"
            + " -Dorg.bytedeco.javacpp.maxbytes=4g -Dorg.bytedeco.javacpp.maxphysicalbytes=8g";

    private Compare() {
    }

    static final class Options {
        int rounds = 5;
        int steps = 3;
        int inferSteps = 4;
        int threads = 2;
        int warmup = 2;
        int leakSteps = 1000;
        double dropout = 0.1;
        Path work = Path.of("benchmarks/target/bench-work");
        Path out;
        String python = "/usr/bin/python3";
        Path script = Path.of("scripts/bench/torch_minilm.py");
        String jvm = DEFAULT_JVM;
        List<String> skip = new ArrayList<>();
        /** ND4J native classifier of every peft4j worker (default: the linux-x86_64 on the class path). */
        String nd4jNative;
        /** Extra peft4j workers {@code mode@classifier} (e.g. {@code lora@linux-x86_64-avx512}) for A/B of native builds. */
        List<String> variants = new ArrayList<>();

        static Options parse(String[] args) {
            Options o = new Options();
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                String v = i + 1 < args.length ? args[i + 1] : null;
                switch (a) {
                    case "--rounds" -> { o.rounds = Integer.parseInt(v); i++; }
                    case "--steps" -> { o.steps = Integer.parseInt(v); i++; }
                    case "--infer-steps" -> { o.inferSteps = Integer.parseInt(v); i++; }
                    case "--threads" -> { o.threads = Integer.parseInt(v); i++; }
                    case "--warmup" -> { o.warmup = Integer.parseInt(v); i++; }
                    case "--leak-steps" -> { o.leakSteps = Integer.parseInt(v); i++; }
                    case "--dropout" -> { o.dropout = Double.parseDouble(v); i++; }
                    case "--work" -> { o.work = Path.of(v); i++; }
                    case "--out" -> { o.out = Path.of(v); i++; }
                    case "--python" -> { o.python = v; i++; }
                    case "--script" -> { o.script = Path.of(v); i++; }
                    case "--jvm" -> { o.jvm = v; i++; }
                    case "--skip" -> { o.skip.addAll(Arrays.asList(v.split(","))); i++; }
                    case "--nd4j-native" -> { o.nd4jNative = v; i++; }
                    case "--variants" -> { o.variants.addAll(Arrays.asList(v.split(","))); i++; }
                    case "--help", "-h" -> {
                        System.out.println(usage());
                        System.exit(0);
                    }
                    default -> throw new IllegalArgumentException("unknown option '" + a + "'\n" + usage());
                }
                if (v == null && !a.startsWith("--help")) {
                    throw new IllegalArgumentException("option " + a + " needs a value");
                }
            }
            if (o.out == null) {
                o.out = Path.of("benchmarks/results/compare-" + LocalDate.now() + ".json");
            }
            return o;
        }

        static String usage() {
            return """
                    Compare [--rounds 5] [--steps 3] [--infer-steps 4] [--threads 2] [--warmup 2] [--leak-steps 1000]
                            [--dropout 0.1] [--work benchmarks/target/bench-work] [--out benchmarks/results/compare-<date>.json]
                            [--python /usr/bin/python3] [--script scripts/bench/torch_minilm.py] [--jvm "<worker JVM flags>"]
                            [--skip name,...]   names: peft4j-full peft4j-lora peft4j-qlora torch-full torch-lora
                                                       peft4j-infer ort torch-infer gemm leak
                            [--nd4j-native linux-x86_64-avx512]   ND4J native build of every peft4j worker
                            [--variants lora@linux-x86_64-avx512,infer@linux-x86_64-onednn-avx512,...]   extra A/B workers""";
        }
    }

    /** A worker process speaking the line protocol of {@link Worker} / torch_minilm.py. */
    static final class Proc implements AutoCloseable {
        final String name;
        final Process process;
        final BufferedReader out;
        final BufferedWriter in;
        JsonNode ready;

        Proc(String name, List<String> command, Map<String, String> env, Path log) throws IOException {
            this.name = name;
            ProcessBuilder pb = new ProcessBuilder(command);
            pb.environment().putAll(env);
            pb.redirectError(ProcessBuilder.Redirect.appendTo(log.toFile()));
            process = pb.start();
            out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
            in = new BufferedWriter(new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8));
        }

        JsonNode readLine() throws IOException {
            String line = out.readLine();
            if (line == null) {
                throw new IllegalStateException("worker " + name + " exited (exit code "
                        + (process.isAlive() ? "?" : process.exitValue()) + "); see its log in the work folder");
            }
            JsonNode n = JSON.readTree(line);
            if (n.has("error")) {
                throw new IllegalStateException("worker " + name + ": " + n.get("error").asText());
            }
            return n;
        }

        JsonNode send(String cmd) throws IOException {
            in.write(cmd);
            in.newLine();
            in.flush();
            return readLine();
        }

        @Override
        public void close() {
            try {
                if (process.isAlive()) {
                    send("quit");
                }
            } catch (IOException | RuntimeException ignored) {
                // the process is going away either way
            }
            try {
                if (!process.waitFor(20, java.util.concurrent.TimeUnit.SECONDS)) {
                    process.destroy();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                process.destroy();
            }
        }
    }

    /** One measured entry: a worker and the variant of its step. */
    record Entry(String name, Proc proc, String variant, int steps) {
    }

    public static void main(String[] args) throws Exception {
        Options o = Options.parse(args);
        ObjectNode result = JSON.createObjectNode();
        result.put("date", ZonedDateTime.now().toString());
        result.put("command", "scripts/bench/compare.sh " + String.join(" ", args));
        result.put("loadavg_start", loadAvg());
        ObjectNode setup = result.putObject("setup");
        BertConfig config = MiniLm.config(o.dropout);
        setup.put("model", "all-MiniLM-L6-v2 (bundled weights), BertForSequenceClassification, mean pooling, 2 labels");
        setup.put("batch", MiniLm.BATCH);
        setup.put("seq", MiniLm.SEQ);
        setup.put("tokens_per_step", MiniLm.BATCH * MiniLm.SEQ);
        setup.put("lora", "r " + MiniLm.RANK + ", alpha " + MiniLm.ALPHA + ", query/value, classifier trained (SEQ_CLS modules_to_save)");
        setup.put("optimizer", "AdamW lr " + MiniLm.LR + ", weight decay " + MiniLm.WEIGHT_DECAY + " on matrices");
        setup.put("dropout", o.dropout);
        setup.put("threads", o.threads);
        setup.put("rounds", o.rounds);
        setup.put("train_steps_per_round", o.steps);
        setup.put("infer_steps_per_round", o.inferSteps);
        setup.put("worker_jvm", o.jvm);
        setup.put("nd4j_native", o.nd4jNative == null ? "linux-x86_64" : o.nd4jNative);
        setup.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        ObjectNode env = setup.putObject("environment");
        for (String k : List.of("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY")) {
            env.put(k, System.getenv(k));
        }
        log("exporting MiniLM weights and the batch to " + o.work);
        Export.write(o.work, config, MiniLm.BATCH, MiniLm.SEQ, MiniLm.SEED);

        Map<String, String> procEnv = new LinkedHashMap<>();
        procEnv.put("OMP_NUM_THREADS", Integer.toString(o.threads));
        Map<String, Proc> procs = new LinkedHashMap<>();
        List<Entry> entries = new ArrayList<>();
        try {
            String tokens = Integer.toString(o.warmup);
            for (String mode : List.of("full", "lora", "qlora")) {
                String name = "peft4j-" + mode;
                if (o.skip.contains(name)) {
                    continue;
                }
                procs.put(name, javaWorker(o, name, procEnv, mode, o.work.toString(), Integer.toString(o.threads), tokens));
                entries.add(new Entry(name, procs.get(name), "base", o.steps));
            }
            for (String mode : List.of("full", "lora")) {
                String name = "torch-" + mode;
                if (!o.skip.contains(name)) {
                    procs.put(name, torchWorker(o, name, procEnv, mode));
                    entries.add(new Entry(name, procs.get(name), "base", o.steps));
                }
            }
            if (!o.skip.contains("peft4j-infer")) {
                Proc p = javaWorker(o, "peft4j-infer", procEnv, "infer", o.work.toString(), Integer.toString(o.threads), tokens);
                procs.put("peft4j-infer", p);
                for (String v : List.of("base", "lora", "merged")) {
                    entries.add(new Entry("peft4j-infer-" + v, p, v, o.inferSteps));
                }
            }
            if (!o.skip.contains("ort")) {
                procs.put("ort", javaWorker(o, "ort", procEnv, "ort", o.work.toString(), Integer.toString(o.threads), tokens));
                entries.add(new Entry("ort-infer", procs.get("ort"), "base", o.inferSteps));
            }
            if (!o.skip.contains("torch-infer")) {
                procs.put("torch-infer", torchWorker(o, "torch-infer", procEnv, "infer"));
                entries.add(new Entry("torch-infer", procs.get("torch-infer"), "base", o.inferSteps));
            }
            if (!o.skip.contains("gemm")) {
                procs.put("gemm", javaWorker(o, "gemm", procEnv, "gemm", o.work.toString(), Integer.toString(o.threads), tokens));
                entries.add(new Entry("gemm", procs.get("gemm"), "base", 3));
            }
            for (String variant : o.variants) {
                String[] mv = variant.split("@");
                if (mv.length != 2) {
                    throw new IllegalArgumentException("--variants entries are mode@classifier, got '" + variant + "'");
                }
                String name = "peft4j-" + mv[0] + "@" + mv[1];
                Proc p = javaWorker(o, mv[1], name, procEnv, mv[0], o.work.toString(), Integer.toString(o.threads), tokens);
                procs.put(name, p);
                if (mv[0].equals("infer")) {
                    entries.add(new Entry("peft4j-infer-base@" + mv[1], p, "base", o.inferSteps));
                } else {
                    entries.add(new Entry(name, p, "base", o.steps));
                }
            }
            ObjectNode readies = result.putObject("workers");
            procs.forEach((k, p) -> readies.set(k, p.ready));

            // ---- alternating rounds ----
            Map<String, List<double[]>> perRound = new LinkedHashMap<>();   // entry -> per-round step times
            Map<String, List<Double>> gemm = new LinkedHashMap<>();
            for (int r = 0; r < o.rounds; r++) {
                log("round " + (r + 1) + "/" + o.rounds + " (load " + loadAvg() + ")");
                for (int i = 0; i < entries.size(); i++) {
                    Entry e = entries.get((i + r) % entries.size());
                    Thread.sleep(300);   // let the previous process's spinning BLAS/OpenMP threads go to sleep
                    JsonNode reply = e.proc().send("round " + e.steps() + " " + e.variant());
                    if (reply.has("gflops")) {
                        reply.get("gflops").fields().forEachRemaining(f ->
                                gemm.computeIfAbsent(f.getKey(), k -> new ArrayList<>()).add(f.getValue().asDouble()));
                    } else {
                        double[] t = new double[reply.get("times_ms").size()];
                        for (int k = 0; k < t.length; k++) {
                            t[k] = reply.get("times_ms").get(k).asDouble();
                        }
                        perRound.computeIfAbsent(e.name(), k -> new ArrayList<>()).add(t);
                    }
                }
            }
            ObjectNode mem = result.putObject("memory");
            for (String name : List.of("peft4j-full", "peft4j-lora", "peft4j-qlora", "torch-full", "torch-lora")) {
                Proc p = procs.get(name);
                if (p != null) {
                    mem.set(name, p.send("mem"));
                }
            }
            for (Proc p : procs.values()) {
                p.close();
            }
            procs.clear();

            ObjectNode leak = result.putObject("leak");
            if (!o.skip.contains("leak") && o.leakSteps > 0) {
                for (String mode : List.of("lora", "full")) {
                    log("leak check (" + mode + ", " + o.leakSteps + " steps, small BERT)");
                    Proc p = javaWorker(o, "leak-" + mode, procEnv, "leak", Integer.toString(o.threads),
                            Integer.toString(o.leakSteps), mode);
                    leak.set(mode, p.ready);
                    p.close();
                }
            }
            result.put("loadavg_end", loadAvg());
            summarize(result, perRound, gemm, config, o);
        } finally {
            for (Proc p : procs.values()) {
                p.close();
            }
        }
        Files.createDirectories(o.out.toAbsolutePath().getParent());
        Path tmp = o.out.resolveSibling(o.out.getFileName() + ".tmp");
        JSON.writeValue(tmp.toFile(), result);
        Files.move(tmp, o.out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        System.out.println(result.get("table").asText());
        log("wrote " + o.out);
    }

    // ---- processes ------------------------------------------------------------------------------

    private static Proc javaWorker(Options o, String name, Map<String, String> env, String... args) throws IOException {
        return javaWorker(o, o.nd4jNative, name, env, args);
    }

    /** A peft4j worker JVM; {@code classifier} (e.g. linux-x86_64-avx512) swaps the ND4J native jar on its class path. */
    private static Proc javaWorker(Options o, String classifier, String name, Map<String, String> env, String... args)
            throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(Arrays.asList(o.jvm.trim().split("\\s+")));
        cmd.add("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn");
        String cp = System.getProperty("java.class.path");
        if (classifier != null && !classifier.equals("linux-x86_64")) {
            String plain = "nd4j-native-1.0.0-M2.1-linux-x86_64.jar";
            String swapped = "nd4j-native-1.0.0-M2.1-" + classifier + ".jar";
            StringBuilder sb = new StringBuilder();
            boolean found = false;
            for (String e : cp.split(java.io.File.pathSeparator)) {
                if (e.endsWith(plain)) {
                    Path alt = Path.of(e).resolveSibling(swapped);
                    if (!Files.isRegularFile(alt)) {
                        throw new IllegalArgumentException(alt + " not found: fetch it with mvn dependency:get "
                                + "-Dartifact=org.nd4j:nd4j-native:1.0.0-M2.1:jar:" + classifier);
                    }
                    e = alt.toString();
                    found = true;
                }
                sb.append(sb.length() == 0 ? "" : java.io.File.pathSeparator).append(e);
            }
            if (!found) {
                throw new IllegalArgumentException("no " + plain + " on the class path to swap for " + classifier);
            }
            cp = sb.toString();
            cmd.add("-Dorg.bytedeco.javacpp.platform.extension=" + classifier.substring("linux-x86_64".length()));
        }
        cmd.add("-cp");
        cmd.add(cp);
        cmd.add(Worker.class.getName());
        cmd.addAll(Arrays.asList(args));
        return start(o, name, cmd, env);
    }

    private static Proc torchWorker(Options o, String name, Map<String, String> env, String mode) throws IOException {
        if (!Files.isRegularFile(o.script)) {
            throw new IllegalArgumentException("PyTorch script not found: " + o.script.toAbsolutePath()
                    + " (run from the repository root or pass --script)");
        }
        List<String> cmd = List.of(o.python, o.script.toString(), "--model", o.work.resolve("model").toString(),
                "--batch", o.work.resolve("batch.json").toString(), "--mode", mode, "--threads", Integer.toString(o.threads),
                "--rank", Integer.toString(MiniLm.RANK), "--alpha", Integer.toString(MiniLm.ALPHA),
                "--lr", Double.toString(MiniLm.LR), "--weight-decay", Double.toString(MiniLm.WEIGHT_DECAY),
                "--warmup", Integer.toString(o.warmup), "--seed", Long.toString(MiniLm.SEED));
        return start(o, name, cmd, env);
    }

    private static Proc start(Options o, String name, List<String> cmd, Map<String, String> env) throws IOException {
        log("starting " + name);
        Path logFile = o.work.resolve(name + ".log");
        Files.deleteIfExists(logFile);
        Proc p = new Proc(name, cmd, env, logFile);
        p.ready = p.readLine();
        return p;
    }

    // ---- summary ----------------------------------------------------------------------------------

    private static double median(List<Double> v) {
        if (v == null || v.isEmpty()) {
            return Double.NaN;
        }
        double[] a = v.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }

    private static double mean(double[] v) {
        return Arrays.stream(v).average().orElse(Double.NaN);
    }

    /** Median over all timed steps of an entry. */
    private static double medianStep(List<double[]> rounds) {
        List<Double> all = new ArrayList<>();
        if (rounds != null) {
            for (double[] r : rounds) {
                for (double x : r) {
                    all.add(x);
                }
            }
        }
        return median(all);
    }

    /** Median over rounds of (mean step of {@code den} in round r) / (mean step of {@code num} in round r): num's speed relative to den. */
    private static double speedRatio(Map<String, List<double[]>> perRound, String num, String den) {
        List<double[]> a = perRound.get(num);
        List<double[]> b = perRound.get(den);
        if (a == null || b == null) {
            return Double.NaN;
        }
        List<Double> ratios = new ArrayList<>();
        for (int r = 0; r < Math.min(a.size(), b.size()); r++) {
            ratios.add(mean(b.get(r)) / mean(a.get(r)));
        }
        return median(ratios);
    }

    private static void summarize(ObjectNode result, Map<String, List<double[]>> perRound, Map<String, List<Double>> gemm,
                                  BertConfig config, Options o) {
        int tokens = MiniLm.BATCH * MiniLm.SEQ;
        ObjectNode modes = result.putObject("modes");
        for (Map.Entry<String, List<double[]>> e : perRound.entrySet()) {
            ObjectNode m = modes.putObject(e.getKey());
            double ms = medianStep(e.getValue());
            m.put("median_step_ms", ms);
            m.put("tokens_per_s", tokens / (ms / 1000));
            ArrayNode rounds = m.putArray("round_mean_ms");
            for (double[] r : e.getValue()) {
                rounds.add(mean(r));
            }
        }
        double ceiling = median(gemm.get("ffn_2048x384x1536"));
        ObjectNode g = result.putObject("gemm_gflops");
        gemm.forEach((k, v) -> g.put(k, median(v)));
        ObjectNode flops = result.putObject("training_flops");
        for (MiniLm.Mode mode : MiniLm.Mode.values()) {
            String name = "peft4j-" + mode.name().toLowerCase(Locale.ROOT);
            double f = Flops.trainingStep(config, MiniLm.BATCH, MiniLm.SEQ, mode, MiniLm.RANK, MiniLm.NUM_LABELS);
            ObjectNode n = flops.putObject(name);
            n.put("gflop_per_step", f / 1e9);
            double ms = medianStep(perRound.get(name));
            n.put("achieved_gflops", f / 1e9 / (ms / 1000));
            n.put("fraction_of_gemm_rate", f / 1e9 / (ms / 1000) / ceiling);
            String torch = "torch-" + mode.name().toLowerCase(Locale.ROOT);
            if (perRound.containsKey(torch)) {
                double tms = medianStep(perRound.get(torch));
                n.put("torch_achieved_gflops", f / 1e9 / (tms / 1000));
            }
        }
        ObjectNode ratios = result.putObject("ratios");
        ratios.put("lora_vs_torch_lora", speedRatio(perRound, "peft4j-lora", "torch-lora"));
        ratios.put("full_vs_torch_full", speedRatio(perRound, "peft4j-full", "torch-full"));
        ratios.put("qlora_vs_torch_lora", speedRatio(perRound, "peft4j-qlora", "torch-lora"));
        ratios.put("lora_step_over_full_step", 1.0 / speedRatio(perRound, "peft4j-lora", "peft4j-full"));
        ratios.put("torch_lora_step_over_full_step", 1.0 / speedRatio(perRound, "torch-lora", "torch-full"));
        ratios.put("infer_base_vs_ort", speedRatio(perRound, "peft4j-infer-base", "ort-infer"));
        ratios.put("infer_base_vs_torch", speedRatio(perRound, "peft4j-infer-base", "torch-infer"));
        ratios.put("infer_lora_unmerged_vs_base", speedRatio(perRound, "peft4j-infer-lora", "peft4j-infer-base"));
        ratios.put("infer_lora_merged_vs_base", speedRatio(perRound, "peft4j-infer-merged", "peft4j-infer-base"));
        for (String k : perRound.keySet()) {
            int at = k.indexOf('@');
            if (at > 0) {
                ratios.put("native build " + k.substring(at + 1) + ": " + k.substring(0, at) + " speed vs default build",
                        speedRatio(perRound, k, k.substring(0, at)));
            }
        }
        JsonNode mem = result.get("memory");
        double hwmLora = mem.path("peft4j-lora").path("hwm_kb").asDouble(Double.NaN);
        double hwmFull = mem.path("peft4j-full").path("hwm_kb").asDouble(Double.NaN);
        ratios.put("lora_peak_mem_over_full", hwmLora / hwmFull);
        ratios.put("torch_lora_peak_mem_over_full", mem.path("torch-lora").path("hwm_kb").asDouble(Double.NaN)
                / mem.path("torch-full").path("hwm_kb").asDouble(Double.NaN));
        double loraFraction = flops.path("peft4j-lora").path("fraction_of_gemm_rate").asDouble();
        ratios.put("lora_fraction_of_gemm_rate", loraFraction);
        JsonNode leak = result.path("leak");

        ObjectNode targets = result.putObject("targets");
        target(targets, "LoRA training >= 1.0x PyTorch tokens/s (aim 1.3x)", ratios.get("lora_vs_torch_lora").asDouble(), 1.0, true);
        target(targets, "full fine-tuning >= 1.0x PyTorch tokens/s", ratios.get("full_vs_torch_full").asDouble(), 1.0, true);
        target(targets, "LoRA >= 50% of the measured GEMM rate", loraFraction, 0.5, true);
        target(targets, "LoRA step <= 0.7x full fine-tuning step", ratios.get("lora_step_over_full_step").asDouble(), 0.7, false);
        target(targets, "LoRA peak memory <= 0.6x full fine-tuning", hwmLora / hwmFull, 0.6, false);
        target(targets, "inference >= 0.8x onnxruntime tokens/s", ratios.get("infer_base_vs_ort").asDouble(), 0.8, true);
        target(targets, "unmerged LoRA inference within 10% of base", ratios.get("infer_lora_unmerged_vs_base").asDouble(), 0.9, true);
        target(targets, "merged LoRA inference equal to base (within 5%)", ratios.get("infer_lora_merged_vs_base").asDouble(), 0.95, true);
        if (leak.has("lora")) {
            target(targets, "no leak: LoRA RSS after " + o.leakSteps + " steps within 5% of after 100",
                    1.0 + leak.get("lora").get("growth").asDouble(), 1.05, false);
        }
        result.put("table", table(result, tokens, ceiling));
    }

    private static void target(ObjectNode targets, String name, double value, double bound, boolean atLeast) {
        ObjectNode t = targets.putObject(name);
        t.put("value", value);
        t.put("bound", bound);
        t.put("met", Double.isNaN(value) ? null : (atLeast ? value >= bound : value <= bound));
    }

    private static String table(ObjectNode r, int tokens, double ceiling) {
        StringBuilder sb = new StringBuilder();
        JsonNode setup = r.get("setup");
        sb.append(String.format(Locale.ROOT, "peft4j vs PyTorch %s / onnxruntime — MiniLM-L6, batch %d x %d, %d threads, %d rounds, load %s -> %s%n",
                r.path("workers").path("torch-lora").path("torch").asText("?"), setup.get("batch").asInt(), setup.get("seq").asInt(),
                setup.get("threads").asInt(), setup.get("rounds").asInt(), r.get("loadavg_start").asText(), r.get("loadavg_end").asText()));
        sb.append(String.format(Locale.ROOT, "%n%-26s %12s %12s%n", "mode", "median ms", "tokens/s"));
        r.get("modes").fields().forEachRemaining(e -> sb.append(String.format(Locale.ROOT, "%-26s %12.1f %12.0f%n",
                e.getKey(), e.getValue().get("median_step_ms").asDouble(), e.getValue().get("tokens_per_s").asDouble())));
        sb.append(String.format(Locale.ROOT, "%nGEMM rate (Nd4j.gemm, sustained): %s GFLOP/s%n", r.get("gemm_gflops").toString()));
        r.get("training_flops").fields().forEachRemaining(e -> {
            if (!Double.isNaN(e.getValue().get("achieved_gflops").asDouble())) {
                sb.append(String.format(Locale.ROOT, "%-14s %6.1f GFLOP/step, %6.1f GFLOP/s = %4.0f%% of GEMM rate%s%n", e.getKey(),
                        e.getValue().get("gflop_per_step").asDouble(), e.getValue().get("achieved_gflops").asDouble(),
                        100 * e.getValue().get("fraction_of_gemm_rate").asDouble(),
                        e.getValue().has("torch_achieved_gflops") ? String.format(Locale.ROOT, " (PyTorch: %.1f GFLOP/s)",
                                e.getValue().get("torch_achieved_gflops").asDouble()) : ""));
            }
        });
        sb.append(String.format(Locale.ROOT, "%n%-22s %10s %10s%n", "peak memory", "VmHWM MB", "VmRSS MB"));
        r.get("memory").fields().forEachRemaining(e -> sb.append(String.format(Locale.ROOT, "%-22s %10.0f %10.0f%n", e.getKey(),
                e.getValue().get("hwm_kb").asDouble() / 1024, e.getValue().get("rss_kb").asDouble() / 1024)));
        JsonNode leak = r.path("leak");
        leak.fields().forEachRemaining(e -> sb.append(String.format(Locale.ROOT, "leak check %-5s RSS after %d steps %.0f MB, after %d %.0f MB (%+.1f%%)%n",
                e.getKey(), e.getValue().get("early_step").asInt(), e.getValue().get("rss_kb_early").asDouble() / 1024,
                e.getValue().get("steps").asInt(), e.getValue().get("rss_kb_end").asDouble() / 1024, 100 * e.getValue().get("growth").asDouble())));
        sb.append(String.format(Locale.ROOT, "%n%-44s %8s%n", "ratio (within-round A/B, median)", "value"));
        r.get("ratios").fields().forEachRemaining(e -> sb.append(String.format(Locale.ROOT, "%-44s %8.3f%n", e.getKey(), e.getValue().asDouble())));
        sb.append(String.format(Locale.ROOT, "%n%-62s %8s %7s  %s%n", "target", "value", "bound", "met"));
        r.get("targets").fields().forEachRemaining(e -> sb.append(String.format(Locale.ROOT, "%-62s %8.3f %7.2f  %s%n", e.getKey(),
                e.getValue().get("value").asDouble(), e.getValue().get("bound").asDouble(),
                e.getValue().get("met").isNull() ? "n/a" : e.getValue().get("met").asBoolean() ? "yes" : "NO")));
        if (r.has("qlora_note")) {
            sb.append("QLoRA: ").append(r.get("qlora_note").asText()).append('\n');
        }
        return sb.toString();
    }

    private static String loadAvg() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).trim();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void log(String msg) {
        System.err.println("[compare] " + msg);
    }
}
