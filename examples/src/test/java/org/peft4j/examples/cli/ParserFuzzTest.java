package org.peft4j.examples.cli;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * The parser fuzz targets ({@link FuzzTargets}) as jazzer-junit fuzz tests.
 *
 * <p>In the regular test run each method runs once on the empty input and on every file in
 * {@code src/test/resources/org/peft4j/examples/cli/ParserFuzzTestInputs/<method>/}: the seeds and
 * every crasher found so far (committed as a regression input once fixed). To fuzz one target for
 * real (one per JVM, a Jazzer rule):
 * <pre>
 *   JAZZER_FUZZ=1 mvn -pl examples -am test -Dtest='ParserFuzzTest#torchBin' -Dsurefire.failIfNoSpecifiedTests=false
 * </pre>
 * New findings are written to that inputs folder. {@link FuzzBudgetTest} fuzzes every target for a
 * fixed number of inputs (seeded) in each regular run.
 */
class ParserFuzzTest {
    @FuzzTest(maxDuration = "10m")
    void safetensors(byte[] data) {
        FuzzTargets.run("safetensors", data);
    }

    @FuzzTest(maxDuration = "10m")
    void torchBin(byte[] data) {
        FuzzTargets.run("torch_bin", data);
    }

    @FuzzTest(maxDuration = "10m")
    void bertConfig(byte[] data) {
        FuzzTargets.run("bert_config", data);
    }

    @FuzzTest(maxDuration = "10m")
    void decoderConfig(byte[] data) {
        FuzzTargets.run("decoder_config", data);
    }

    @FuzzTest(maxDuration = "10m")
    void adapterConfig(byte[] data) {
        FuzzTargets.run("adapter_config", data);
    }

    @FuzzTest(maxDuration = "10m")
    void adapterhubConfig(byte[] data) {
        FuzzTargets.run("adapterhub_config", data);
    }

    @FuzzTest(maxDuration = "10m")
    void onnx(byte[] data) {
        FuzzTargets.run("onnx", data);
    }

    @FuzzTest(maxDuration = "10m")
    void quantState(byte[] data) {
        FuzzTargets.run("quant_state", data);
    }

    @FuzzTest(maxDuration = "10m")
    void trainYaml(byte[] data) {
        FuzzTargets.run("train_yaml", data);
    }

    @FuzzTest(maxDuration = "10m")
    void jsonlData(byte[] data) {
        FuzzTargets.run("jsonl_data", data);
    }

    @FuzzTest(maxDuration = "10m")
    void csvData(byte[] data) {
        FuzzTargets.run("csv_data", data);
    }

    @FuzzTest(maxDuration = "10m")
    void tokenizerJson(byte[] data) {
        FuzzTargets.run("tokenizer_json", data);
    }

    /** The inputs folder of target {@code name}: its jazzer-junit method name. */
    static String methodOf(String name) {
        StringBuilder sb = new StringBuilder();
        boolean up = false;
        for (char c : name.toCharArray()) {
            if (c == '_') {
                up = true;
            } else {
                sb.append(up ? Character.toUpperCase(c) : c);
                up = false;
            }
        }
        return sb.toString();
    }
}
