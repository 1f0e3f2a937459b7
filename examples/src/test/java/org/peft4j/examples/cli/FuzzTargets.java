package org.peft4j.examples.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.data.TextClassificationData;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.io.OnnxReader;
import org.peft4j.core.io.SafeTensorsFile;
import org.peft4j.core.io.TorchBinFile;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.decoder.ConfigFields;
import org.peft4j.core.model.gpt2.Gpt2Config;
import org.peft4j.core.model.llama.LlamaConfig;
import org.peft4j.core.model.t5.T5Config;
import org.peft4j.core.peft.AdapterHubLayout;
import org.peft4j.core.peft.AdapterLayouts;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftException;
import org.peft4j.core.tokenizer.HfTokenizer;
import org.peft4j.quant.QuantConfig;
import org.peft4j.quant.QuantFuzzAccess;
import org.peft4j.quant.QuantType;
import org.peft4j.quant.Quantized4bit;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * One fuzz target per parser a user can feed files to. Each takes the raw bytes of one input and
 * runs the parser on them; the project's named error types (IllegalArgumentException and its
 * subclasses SafeTensorsException / TorchBinException / CheckpointException, PeftException,
 * CliException, and IOException for unreadable text) are the expected outcome of a bad input and
 * are swallowed. Anything else — a NullPointerException, an ArrayIndexOutOfBounds, an
 * OutOfMemoryError, a StackOverflowError — escapes and is a finding.
 *
 * <p>Run by {@link ParserFuzzTest} (jazzer-junit: regression inputs in the regular run, fuzzing
 * with {@code JAZZER_FUZZ=1}) and by {@link FuzzBudgetTest} (Jazzer's own driver, a few seconds
 * per target in a child JVM).
 */
public final class FuzzTargets {
    private FuzzTargets() {
    }

    /** Target name → target, in the order they are reported. */
    public static final Map<String, Consumer<byte[]>> TARGETS = targets();

    private static Map<String, Consumer<byte[]>> targets() {
        Map<String, Consumer<byte[]>> m = new LinkedHashMap<>();
        m.put("safetensors", FuzzTargets::safetensors);
        m.put("torch_bin", FuzzTargets::torchBin);
        m.put("bert_config", FuzzTargets::bertConfig);
        m.put("decoder_config", FuzzTargets::decoderConfig);
        m.put("adapter_config", FuzzTargets::adapterConfig);
        m.put("adapterhub_config", FuzzTargets::adapterHubConfig);
        m.put("onnx", FuzzTargets::onnx);
        m.put("quant_state", FuzzTargets::quantState);
        m.put("train_yaml", FuzzTargets::trainYaml);
        m.put("jsonl_data", FuzzTargets::jsonl);
        m.put("csv_data", FuzzTargets::csv);
        m.put("tokenizer_json", FuzzTargets::tokenizer);
        return m;
    }

    /**
     * Inputs per target in the regular (deterministic) run of {@link FuzzBudgetTest}: two to four
     * seconds of fuzzing each, so start-up (~10 s a child JVM) dominates the test's time. Cheap parsers get more.
     */
    public static final Map<String, Integer> REGULAR_RUNS = Map.ofEntries(
            Map.entry("safetensors", 3_000),
            Map.entry("torch_bin", 2_000),
            Map.entry("bert_config", 80_000),
            Map.entry("decoder_config", 40_000),
            Map.entry("adapter_config", 80_000),
            Map.entry("adapterhub_config", 2_000),
            Map.entry("onnx", 80_000),
            Map.entry("quant_state", 10_000),
            Map.entry("train_yaml", 800),
            Map.entry("jsonl_data", 20_000),
            Map.entry("csv_data", 20_000),
            Map.entry("tokenizer_json", 60_000));

    /** Runs target {@code name} on {@code data}. */
    public static void run(String name, byte[] data) {
        Consumer<byte[]> t = TARGETS.get(name);
        if (t == null) {
            throw new IllegalStateException("no fuzz target '" + name + "' (known: " + TARGETS.keySet() + ")");
        }
        t.accept(data);
    }

    /** The entry Jazzer's driver calls; the target is chosen by {@code -Dpeft4j.fuzz.target=NAME}. */
    public static void fuzzerTestOneInput(byte[] data) {
        run(System.getProperty("peft4j.fuzz.target"), data);
    }

    /**
     * Called by Jazzer's driver before the fuzzing clock starts: runs the target once on the empty
     * input and on each seed in {@code -Dpeft4j.fuzz.seeds=DIR}, so class loading and
     * instrumentation (ND4J, Jackson, the tokenizer's native library) do not eat the budget.
     */
    public static void fuzzerInitialize() throws IOException {
        String name = System.getProperty("peft4j.fuzz.target");
        run(name, new byte[0]);
        String seeds = System.getProperty("peft4j.fuzz.seeds");
        if (seeds != null) {
            try (var files = Files.list(Path.of(seeds))) {
                for (Path f : (Iterable<Path>) files::iterator) {
                    run(name, Files.readAllBytes(f));
                }
            }
        }
    }

    // ---- targets -----------------------------------------------------------------------------

    static void safetensors(byte[] data) {
        withFile(data, ".safetensors", p -> {
            try (SafeTensorsFile f = SafeTensorsFile.open(p)) {
                for (String k : f.keys()) {
                    if (f.info(k).dtype().nd4jType() != null) {
                        f.get(k);
                    }
                }
            }
        });
    }

    static void torchBin(byte[] data) {
        withFile(data, ".bin", p -> {
            try (TorchBinFile f = TorchBinFile.open(p)) {
                for (String k : f.keys()) {
                    f.get(k);
                }
            }
        });
    }

    static void bertConfig(byte[] data) {
        expected(() -> BertConfig.fromJson(text(data), "fuzz/config.json"));
    }

    static void decoderConfig(byte[] data) {
        expected(() -> Gpt2Config.fromFields(ConfigFields.of(JsonFiles.mapper().readTree(text(data)), "fuzz/config.json")));
        expected(() -> LlamaConfig.fromFields(ConfigFields.of(JsonFiles.mapper().readTree(text(data)), "fuzz/config.json")));
        expected(() -> T5Config.fromFields(ConfigFields.of(JsonFiles.mapper().readTree(text(data)), "fuzz/config.json")));
    }

    /**
     * The bytes as AdapterHub's {@code adapter_config.json} (an adapter folder), then as its
     * {@code adapter_fusion_config.json} beside one valid fused adapter {@code a} (a fusion folder),
     * each listed by the layout that recognises the folder, as {@code --adapter DIR} does.
     */
    static void adapterHubConfig(byte[] data) {
        expected(() -> {
            Path dir = Files.createTempDirectory("peft4j-fuzz-ah");
            try {
                Files.write(dir.resolve(AdapterHubLayout.CONFIG_NAME), data);
                AdapterLayouts.forFolder(dir).list(dir, "fuzz");
            } finally {
                deleteTree(dir);
            }
        });
        expected(() -> {
            Path dir = Files.createTempDirectory("peft4j-fuzz-fusion");
            try {
                Files.write(dir.resolve(AdapterHubLayout.FUSION_CONFIG_NAME), data);
                Path a = Files.createDirectories(dir.resolve("a"));
                Files.writeString(a.resolve(AdapterHubLayout.CONFIG_NAME), FUSED_ADAPTER_CONFIG);
                AdapterLayouts.forFolder(dir).list(dir, "fuzz");
            } finally {
                deleteTree(dir);
            }
        });
    }

    /** A valid AdapterHub seq_bn config: the fused adapter beside a fuzzed fusion config. */
    static final String FUSED_ADAPTER_CONFIG = """
            {"config": {"architecture": "bottleneck", "mh_adapter": false, "output_adapter": true,
              "reduction_factor": 16, "non_linearity": "relu", "original_ln_before": true,
              "original_ln_after": true, "residual_before_ln": true, "ln_before": false, "ln_after": false,
              "init_weights": "bert", "is_parallel": false, "scaling": 1.0, "use_gating": false,
              "adapter_residual_before_ln": false, "inv_adapter": null, "inv_adapter_reduction_factor": null,
              "cross_adapter": false, "leave_out": [], "dropout": 0.0, "phm_layer": false},
             "hidden_size": 16, "model_class": "BertModel", "model_name": "bert-tiny", "model_type": "bert",
             "name": "a", "version": "adapters.1.2.0"}
            """;

    private static void deleteTree(Path dir) throws IOException {
        try (var s = Files.walk(dir)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    static void adapterConfig(byte[] data) {
        expected(() -> PeftConfig.fromJson(text(data), "fuzz/adapter_config.json"));
    }

    static void onnx(byte[] data) {
        expected(() -> {
            var m = OnnxReader.parse(data, "fuzz.onnx");
            for (var t : m.getGraph().getInitializerList()) {
                OnnxReader.toArray(t, "fuzz.onnx");
            }
        });
    }

    /** A valid 64-element NF4 weight whose quant_state JSON is replaced by the input. */
    private static final class QuantBase {
        static final Map<String, INDArray> TENSORS = base();

        static Map<String, INDArray> base() {
            float[] w = new float[64];
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) Math.sin(i * 0.37);
            }
            Map<String, INDArray> m = new LinkedHashMap<>();
            Quantized4bit.quantize(w, new long[]{8, 8}, QuantType.NF4, 64, true).toStateDict("m")
                    .forEach((k, v) -> m.put(k.substring("m.weight".length()), v));
            return m;
        }
    }

    static void quantState(byte[] data) {
        expected(() -> {
            Map<String, INDArray> m = new LinkedHashMap<>(QuantBase.TENSORS);
            String stateKey = m.keySet().stream().filter(k -> k.contains("quant_state")).findFirst().orElseThrow();
            m.put(stateKey, data.length == 0 ? Nd4j.create(DataType.UINT8, 0)
                    : Nd4j.createFromArray(data).castTo(DataType.UINT8));
            QuantFuzzAccess.rebuild(m, "fuzz/model.safetensors: m");
            QuantConfig.fromJson(JsonFiles.mapper().readTree(text(data)), "fuzz/config.json: quantization_config");
        });
    }

    static void trainYaml(byte[] data) {
        withFile(data, ".yaml", p -> TrainRecipe.read(p, List.of(), null));
    }

    static void jsonl(byte[] data) {
        expected(() -> TextClassificationData.readJsonl(new ByteArrayInputStream(data), "fuzz.jsonl",
                TextClassificationData.Options.DEFAULT));
    }

    static void csv(byte[] data) {
        expected(() -> TextClassificationData.readCsv(new ByteArrayInputStream(data), "fuzz.csv",
                TextClassificationData.Options.DEFAULT));
    }

    static void tokenizer(byte[] data) {
        expected(() -> HfTokenizer.fromStream(new ByteArrayInputStream(data), "fuzz/tokenizer.json").close());
    }

    // ---- helpers -----------------------------------------------------------------------------

    interface Body {
        void run() throws Exception;
    }

    interface FileBody {
        void run(Path p) throws Exception;
    }

    private static String text(byte[] data) {
        return new String(data, StandardCharsets.UTF_8);
    }

    /** Runs {@code body}, swallowing the error types a bad input is allowed to produce. */
    static void expected(Body body) {
        try {
            body.run();
        } catch (IllegalArgumentException | PeftException | CliException | JsonProcessingException
                 | UncheckedIOException e) {
            // a named, user-facing error: what a bad input must produce
        } catch (IOException e) {
            // text that is not valid JSON/CSV: reported as a parse error naming the source
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Exception e) {
            throw new AssertionError("unexpected checked exception " + e, e);
        }
    }

    private static void withFile(byte[] data, String suffix, FileBody body) {
        expected(() -> {
            Path p = Files.createTempFile("peft4j-fuzz", suffix);
            try {
                Files.write(p, data);
                body.run(p);
            } finally {
                Files.deleteIfExists(p);
            }
        });
    }
}
