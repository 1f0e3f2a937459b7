package org.peft4j.benchmarks;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.model.ModelZoo;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One measured process of the comparison harness ({@link Compare}). Each mode runs in its own
 * JVM so that its peak resident memory is its own. Protocol: after loading and warming up it
 * prints one JSON line {@code {"ready": ...}}; then each command read from stdin gets one JSON
 * line back:
 * <ul>
 *   <li>{@code round K [variant]}: K timed steps → {@code {"times_ms": [...]}} (for {@code gemm}:
 *       {@code {"gflops": {...}}});</li>
 *   <li>{@code mem}: {@code {"rss_kb", "hwm_kb"}} from /proc/self/status;</li>
 *   <li>{@code quit}.</li>
 * </ul>
 * Usage: {@code Worker <mode> <modelDir> <threads> [warmup]} with mode one of {@code full},
 * {@code lora}, {@code qlora} (training), {@code infer} (variants {@code base}, {@code lora},
 * {@code merged}), {@code ort} (onnxruntime), {@code gemm}; or {@code Worker leak <threads> <steps> [full|lora]}.
 */
public final class Worker {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Worker() {
    }

    /** Something that can be timed step by step. */
    interface Job {
        void step(String variant) throws Exception;
    }

    public static void main(String[] args) throws Exception {
        // stdout carries the protocol only; everything else (ND4J's banner, logs) goes to stderr
        PrintStream out = System.out;
        System.setOut(System.err);
        String mode = args[0];
        if (mode.equals("leak")) {
            int threads = Integer.parseInt(args[1]);
            setThreads(threads);
            MiniLm.Mode lm = MiniLm.Mode.valueOf(args.length > 3 ? args[3].toUpperCase() : "LORA");
            out.println(JSON.writeValueAsString(LeakCheck.run(Integer.parseInt(args[2]), 100, lm)));
            out.flush();
            return;
        }
        Path dir = Path.of(args[1]);
        int threads = Integer.parseInt(args[2]);
        int warmup = args.length > 3 ? Integer.parseInt(args[3]) : 2;
        setThreads(threads);
        MiniLm.Batch batch = Export.readBatch(dir.resolve("batch.json"));
        ObjectNode ready = JSON.createObjectNode();
        ready.put("ready", true);
        ready.put("mode", mode);
        ready.put("threads", Nd4j.getEnvironment().maxMasterThreads());
        ready.put("nd4j_platform_extension", System.getProperty("org.bytedeco.javacpp.platform.extension", ""));
        ready.put("kernel_threads", org.peft4j.core.tensor.Kernels.threads());
        Job job;
        GemmRate gemm = null;
        switch (mode) {
            case "full", "lora", "qlora" -> {
                BertForSequenceClassification m = BertForSequenceClassification.load(dir.resolve("model"), new Rng(MiniLm.SEED));
                MiniLm.Trainer tr = MiniLm.trainer(MiniLm.Mode.valueOf(mode.toUpperCase()), m);
                ready.put("trainable", tr.trainableParameters());
                job = v -> tr.step(batch);
            }
            case "infer" -> {
                Map<String, BertModel> models = inferenceModels(dir.resolve("model"));
                job = v -> {
                    try (NoGrad ignored = NoGrad.enter()) {
                        models.get(v).forward(batch.inputIds(), batch.attentionMask(), null);
                    }
                };
                for (String v : models.keySet()) {
                    for (int i = 0; i < warmup; i++) {
                        job.step(v);
                    }
                }
                warmup = 0;
            }
            case "ort" -> {
                Ort ort = new Ort(ModelZoo.onnxBytes(ModelZoo.MINILM_L6), threads, batch);
                job = v -> ort.run();
                ready.put("onnxruntime", ai.onnxruntime.OrtEnvironment.getEnvironment().getVersion());
            }
            case "gemm" -> {
                gemm = new GemmRate();
                GemmRate g = gemm;
                job = v -> {
                    g.ffn(5);
                    g.square(5);
                };
            }
            default -> throw new IllegalArgumentException("unknown worker mode '" + mode + "'");
        }
        for (int i = 0; i < warmup; i++) {
            job.step("base");
        }
        out.println(JSON.writeValueAsString(ready));
        out.flush();

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] cmd = line.trim().split("\\s+");
            ObjectNode reply = JSON.createObjectNode();
            switch (cmd[0]) {
                case "round" -> {
                    int k = Integer.parseInt(cmd[1]);
                    String variant = cmd.length > 2 ? cmd[2] : "base";
                    if (gemm != null) {
                        ObjectNode g = reply.putObject("gflops");
                        // k blocks of 10 back-to-back products per shape; the block rates are averaged
                        double ffn = 0;
                        double sq = 0;
                        for (int i = 0; i < k; i++) {
                            ffn += gemm.ffn(10) / k;
                            sq += gemm.square(10) / k;
                        }
                        g.put("ffn_2048x384x1536", ffn);
                        g.put("square_768", sq);
                        g.put("ffn_best_call", gemm.ffnBest(10));
                    } else {
                        ArrayNode times = reply.putArray("times_ms");
                        for (int i = 0; i < k; i++) {
                            long t = System.nanoTime();
                            job.step(variant);
                            times.add((System.nanoTime() - t) / 1e6);
                        }
                    }
                }
                case "mem" -> {
                    ProcMem m = ProcMem.read();
                    reply.put("rss_kb", m.rssKb());
                    reply.put("hwm_kb", m.hwmKb());
                }
                case "quit" -> {
                    reply.put("bye", true);
                    out.println(JSON.writeValueAsString(reply));
                    out.flush();
                    return;
                }
                default -> reply.put("error", "unknown command " + cmd[0]);
            }
            out.println(JSON.writeValueAsString(reply));
            out.flush();
        }
    }

    static void setThreads(int threads) {
        Nd4j.getEnvironment().setMaxMasterThreads(threads);
        Nd4j.getEnvironment().setMaxThreads(threads);
    }

    /** Base encoder, the same with unmerged LoRA on query/value, and with that LoRA merged. */
    static Map<String, BertModel> inferenceModels(Path modelDir) {
        Map<String, BertModel> m = new LinkedHashMap<>();
        m.put("base", BertForSequenceClassification.load(modelDir).bert());
        BertModel lora = BertForSequenceClassification.load(modelDir).bert();
        PeftModel pl = Peft.apply(lora, MiniLm.loraConfigEncoder());
        pl.eval();
        m.put("lora", lora);
        BertModel merged = BertForSequenceClassification.load(modelDir).bert();
        PeftModel pm = Peft.apply(merged, MiniLm.loraConfigEncoder());
        pm.eval();
        pm.merge();
        m.put("merged", merged);
        return m;
    }

    /** onnxruntime (Java API) running the bundled ONNX export on the same batch. */
    static final class Ort {
        private final OrtEnvironment env = OrtEnvironment.getEnvironment();
        private final OrtSession session;
        private final Map<String, OnnxTensor> inputs = new HashMap<>();

        Ort(byte[] onnx, int threads, MiniLm.Batch batch) throws OrtException {
            OrtSession.SessionOptions o = new OrtSession.SessionOptions();
            o.setIntraOpNumThreads(threads);
            o.setInterOpNumThreads(1);
            o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            session = env.createSession(onnx, o);
            long[][] ids = toLong2d(batch.inputIds());
            long[][] mask = toLong2d(batch.attentionMask());
            inputs.put("input_ids", OnnxTensor.createTensor(env, ids));
            inputs.put("attention_mask", OnnxTensor.createTensor(env, mask));
            inputs.put("token_type_ids", OnnxTensor.createTensor(env, new long[ids.length][ids[0].length]));
        }

        void run() throws OrtException {
            try (OrtSession.Result r = session.run(inputs)) {
                if (r.size() == 0) {
                    throw new IllegalStateException("onnxruntime returned no output");
                }
            }
        }

        private static long[][] toLong2d(INDArray a) {
            long[][] out = new long[(int) a.size(0)][];
            for (int i = 0; i < out.length; i++) {
                out[i] = a.getRow(i).dup().toLongVector();
            }
            return out;
        }
    }
}
