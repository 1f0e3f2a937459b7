package org.peft4j.examples.cli;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.peft.PeftModel;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad inputs a user can give {@code peft4j}, each through the real command line: every one must
 * exit with status 2 and print one line saying what is wrong (naming the key, file or value),
 * with no stack trace, and create nothing on disk. The lines printed are written to
 * {@code examples/target/cli-bad-inputs.txt} (the table in the README's reliability section).
 */
class CliBadInputsTest {
    @TempDir
    static Path tmp;
    static Path bert;
    static Path data;
    static final List<String> TABLE = new ArrayList<>();

    /** The recipes' output folders: relative, as a recipe file may only write inside the current folder. */
    static final Path OUTS = Path.of("target", "cli-bad-inputs-runs");

    @BeforeAll
    static void setUp() throws IOException {
        CliTestSupport.deleteRecursively(OUTS);
        bert = CliTestSupport.copyModel("bert-tiny", tmp.resolve("bert-tiny"));
        CliTestSupport.writeWordTokenizer(bert, 50, true);
        data = tmp.resolve("train.jsonl");
        Files.write(data, AdapterCommandsTest.tinyData(16, 5));
    }

    /** A recipe that is valid except for {@code change} (appended or substituted lines). */
    private static Path recipe(String name, String body) throws IOException {
        Path f = tmp.resolve(name + ".yaml");
        Files.writeString(f, body.replace("MODEL", bert.toString()).replace("DATA", data.toString())
                .replace("OUT", OUTS.resolve("out-" + name).toString()));
        return f;
    }

    private static final String GOOD = """
            model: MODEL
            data:
              train: DATA
              labels: [neg, pos]
              max_length: 16
            peft:
              peft_type: LORA
              r: 2
              target_modules: [query, value]
            training:
              epochs: 1
              batch_size: 4
              learning_rate: 0.01
            output_dir: OUT
            """;

    /** Runs one bad command line; checks the user-error contract and that {@code expect} is in the message. */
    private static String bad(String what, String expect, String... args) {
        CliTestSupport.Run r = CliTestSupport.cli(args);
        assertEquals(2, r.code(), what + ": " + r);
        String err = r.err().strip();
        assertEquals(1, err.lines().count(), what + ": exactly one line on stderr: " + r);
        assertFalse(err.contains("\tat ") || err.contains("Exception"), what + ": no stack trace: " + r);
        assertTrue(err.contains(expect), what + ": expected '" + expect + "' in: " + err);
        TABLE.add("| " + what + " | `" + err.replace(tmp.toString(), "$TMP").replace("|", "\\|") + "` |");
        return err;
    }

    @Test
    void everyBadInputIsOneLineExitTwoAndCreatesNothing() throws IOException {
        bad("unknown command", "unknown command 'frobnicate'", "frobnicate");
        bad("train without a config", "one argument: the config file", "train");
        bad("config file missing", "does not exist", "train", tmp.resolve("missing.yaml").toString());
        bad("YAML syntax error", "cannot parse", "train", recipe("syntax", "model: [unclosed\n").toString());
        bad("unknown top-level key", "unknown key 'epochz'", "train", recipe("unknown", GOOD + "epochz: 3\n").toString());
        bad("string where a number belongs", "training.learning_rate must be a number, got \"fast\"", "train",
                recipe("type", GOOD.replace("learning_rate: 0.01", "learning_rate: fast")).toString());
        bad("word as data.max_length", "data.max_length must be an integer", "train",
                recipe("maxlen", GOOD.replace("max_length: 16", "max_length: long")).toString());
        bad("--set with a wrong type", "training.epochs must be an integer", "train", recipe("set", GOOD).toString(),
                "--set", "training.epochs=abc");
        bad("duplicate key", "Duplicate field 'output_dir'", "train", recipe("dup", GOOD + "output_dir: again\n").toString());
        StringBuilder bomb = new StringBuilder("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (char c = 'b'; c <= 'j'; c++) {
            bomb.append(c).append(": &").append(c).append(" [");
            for (int i = 0; i < 10; i++) {
                bomb.append(i == 0 ? "" : ", ").append('*').append((char) (c - 1));
            }
            bomb.append("]\n");
        }
        bad("YAML alias bomb (10^10 nodes)", "expands to more than 100000 values", "train", recipe("bomb", bomb.toString()).toString());
        bad("YAML nested 5000 deep", "cannot parse", "train",
                recipe("deep", "model: " + "[".repeat(5000) + "]".repeat(5000) + "\n").toString());
        bad("output_dir climbing out with ..", "climbs out of the current folder", "train",
                recipe("escape", GOOD.replace("output_dir: OUT", "output_dir: ../../escaped")).toString());
        bad("absolute output_dir in a recipe", "is an absolute path; a recipe may only write inside the current folder", "train",
                recipe("absolute", GOOD.replace("output_dir: OUT", "output_dir: " + tmp.resolve("abs-out"))).toString());
        assertFalse(Files.exists(tmp.resolve("abs-out")), "nothing written at the absolute path");
        Path distillCfg = tmp.resolve("distill-nodata.yaml");
        Files.writeString(distillCfg, """
                teacher: {model: %s}
                student: {model: %s, modes: [full]}
                data: {train: %s, eval: %s, labels: [neg, pos], max_length: 16}
                output_dir: %s
                """.formatted(bert, bert, tmp.resolve("no-such-train.jsonl"), data, OUTS.resolve("out-distill")));
        bad("distill: data file missing (checked before the teacher runs)", "nor an existing file", "distill", distillCfg.toString());
        assertFalse(Files.exists(OUTS.resolve("out-distill")), "distill: no output folder before its inputs are checked");
        bad("model folder missing", "is neither a bundled model", "train",
                recipe("nomodel", GOOD.replace("model: MODEL", "model: " + tmp.resolve("no-such-model"))).toString());
        bad("data file missing", "does not exist", "train",
                recipe("nodata", GOOD.replace("train: DATA", "train: " + tmp.resolve("no-such.jsonl"))).toString());
        bad("bad flag", "unknown option --frobnicate", "train", recipe("flag", GOOD).toString(), "--frobnicate");
        bad("peft: a word where a number belongs", "peft.r must be an integer, got \"four\" (string)", "train",
                recipe("peftword", GOOD.replace("r: 2", "r: four")).toString());
        bad("peft: a fraction where an integer belongs", "peft.r must be an integer, got 2.5 (number)", "train",
                recipe("peftfrac", GOOD.replace("r: 2", "r: 2.5")).toString());
        bad("peft: null for a number", "peft.lora_dropout must be a number, got null", "train",
                recipe("peftnull", GOOD.replace("r: 2", "r: 2\n  lora_dropout: ~")).toString());
        bad("peft: unknown key", "unknown key peft.lora_alfa for LORA", "train",
                recipe("peftkey", GOOD.replace("r: 2", "r: 2\n  lora_alfa: 8")).toString());
        bad("training: unknown key", "unknown training config key training.epochz", "train",
                recipe("trainkey", GOOD.replace("epochs: 1", "epochz: 1")).toString());
        bad("data: unknown key", "unknown key data.trian", "train",
                recipe("datakey", GOOD.replace("train: DATA", "train: DATA\n  trian: x")).toString());
        bad("training: value out of range", "training.learning_rate must be finite and > 0", "train",
                recipe("range", GOOD.replace("learning_rate: 0.01", "learning_rate: -1")).toString());
        Path badJsonl = tmp.resolve("broken.jsonl");
        Files.writeString(badJsonl, "{\"text\": \"w4 w5\", \"label\": \"pos\"}\n{\"text\": \"w6\", \"label\n");
        bad("data file that is not JSONL", "broken.jsonl", "train",
                recipe("badfile", GOOD.replace("train: DATA", "train: " + badJsonl)).toString());
        bad("data.max_length longer than the model allows", "max_position_embeddings 32", "train",
                recipe("toolong", GOOD.replace("max_length: 16", "max_length: 64")).toString());
        // a recipe's relative output_dir may not lead out of the current folder through a link
        Path outside = Files.createDirectories(tmp.resolve("outside"));
        Path link = Path.of("target", "cli-bad-inputs-link").toAbsolutePath();
        Files.createDirectories(link.getParent());
        Files.deleteIfExists(link);
        Files.createSymbolicLink(link, outside);
        try {
            bad("output_dir through a symlink out of the current folder", "outside the current folder", "train",
                    recipe("symlink", GOOD.replace("output_dir: OUT", "output_dir: target/cli-bad-inputs-link/run")).toString());
            assertFalse(Files.exists(outside.resolve("run")), "nothing written through the link");
        } finally {
            Files.deleteIfExists(link);
        }
        for (String n : List.of("type", "maxlen", "set", "escape", "nomodel", "nodata", "bomb", "flag", "peftword",
                "peftfrac", "peftnull", "peftkey", "trainkey", "datakey", "range", "badfile", "toolong", "symlink", "absolute")) {
            assertFalse(Files.exists(OUTS.resolve("out-" + n)), n + ": nothing may be created before validation");
        }
        bad("adapter folder missing", "no-such-adapter", "predict", "--model", bert.toString(), "--adapter",
                tmp.resolve("no-such-adapter").toString(), "--text", "w4 w5");

        // a good run, then its adapter with one tensor of the wrong shape
        CliTestSupport.Run good = CliTestSupport.cli("train", recipe("good", GOOD.replace("target_modules: [query, value]",
                "target_modules: [query, value]\n  modules_to_save: [classifier]")).toString());
        assertEquals(0, good.code(), good.toString());
        Path adapter = OUTS.resolve("out-good").resolve("adapter");
        CliTestSupport.Run goodPredict = CliTestSupport.cli("predict", "--model", bert.toString(), "--adapter",
                adapter.toString(), "--text", "w4 w5");
        assertEquals(0, goodPredict.code(), "the unchanged adapter loads: " + goodPredict);
        Path wrong = tmp.resolve("wrong-shape-adapter");
        Files.createDirectories(wrong);
        for (String f : CliTestSupport.fileNames(adapter)) {
            Files.copy(adapter.resolve(f), wrong.resolve(f));
        }
        var tensors = new java.util.LinkedHashMap<>(SafeTensors.load(adapter.resolve(PeftModel.WEIGHTS_NAME)));
        String key = tensors.keySet().stream().filter(k -> k.contains("lora_A")).findFirst().orElseThrow();
        tensors.put(key, tensors.get(key).transpose().dup());
        SafeTensors.write(wrong.resolve(PeftModel.WEIGHTS_NAME), tensors);
        bad("adapter tensor of the wrong shape", key, "predict", "--model", bert.toString(), "--adapter", wrong.toString(),
                "--text", "w4 w5");

        // a model whose weights hold NaN: a warning on load and a diverged loss; with --strict-finite an error on load
        Path nan = tmp.resolve("nan-model");
        CliTestSupport.copyModel("bert-tiny", nan);
        Files.copy(bert.resolve("tokenizer.json"), nan.resolve("tokenizer.json"));
        var w = new java.util.LinkedHashMap<>(SafeTensors.load(nan.resolve("model.safetensors")));
        String ln = w.keySet().stream().filter(k -> k.contains("embeddings.LayerNorm.weight")).findFirst().orElseThrow();
        w.put(ln, w.get(ln).dup().putScalar(0, Float.NaN));
        SafeTensors.write(nan.resolve("model.safetensors"), w);
        bad("NaN loss (a model holding NaN)", "try a lower learning rate", "train",
                recipe("nanloss", GOOD.replace("model: MODEL", "model: " + nan)).toString());
        bad("NaN in the weights with --strict-finite", "tensor '" + ln + "' holds 1 NaN", "train",
                recipe("nanstrict", GOOD.replace("model: MODEL", "model: " + nan)).toString(), "--strict-finite");
        assertFalse(Files.exists(OUTS.resolve("out-nanstrict")), "strict: nothing created");
        assertEquals(org.peft4j.core.io.FiniteCheck.Policy.WARN, org.peft4j.core.io.FiniteCheck.policy(),
                "--strict-finite lasts one run");

        // model folders holding hostile weights
        Path evil = Files.createDirectories(tmp.resolve("evil-bin"));
        Files.copy(bert.resolve("config.json"), evil.resolve("config.json"));
        Files.copy(bert.resolve("tokenizer.json"), evil.resolve("tokenizer.json"));
        try (var in = CliBadInputsTest.class.getResourceAsStream("ParserFuzzTestInputs/torchBin/seed-evil_os_system.bin")) {
            Files.write(evil.resolve("pytorch_model.bin"), in.readAllBytes());
        }
        bad("pytorch_model.bin whose pickle calls os.system", "global 'posix.system', which is not allowed", "embed",
                "--model", evil.toString(), "--text", "w4 w5");
        Path huge = Files.createDirectories(tmp.resolve("huge"));
        Files.copy(bert.resolve("config.json"), huge.resolve("config.json"));
        Files.copy(bert.resolve("tokenizer.json"), huge.resolve("tokenizer.json"));
        byte[] header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1000000,1000000],\"data_offsets\":[0,16]}}"
                .getBytes(StandardCharsets.UTF_8);
        Files.write(huge.resolve("model.safetensors"), ByteBuffer.allocate(8 + header.length + 16)
                .order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).put(header).array());
        bad("safetensors claiming a 10^12-element tensor", "needs 1000000000000 × 4 = 4000000000000 bytes", "embed",
                "--model", huge.toString(), "--text", "w4 w5");
        Path escaping = Files.createDirectories(tmp.resolve("escaping-index"));
        Files.copy(bert.resolve("config.json"), escaping.resolve("config.json"));
        Files.copy(bert.resolve("tokenizer.json"), escaping.resolve("tokenizer.json"));
        Files.copy(bert.resolve("model.safetensors"), tmp.resolve("outside.safetensors"));
        Files.writeString(escaping.resolve("model.safetensors.index.json"),
                "{\"metadata\": {}, \"weight_map\": {\"embeddings.word_embeddings.weight\": \"../outside.safetensors\"}}");
        bad("shard index naming a file outside the folder", "lies outside the checkpoint folder", "embed",
                "--model", escaping.toString(), "--text", "w4 w5");

        Path fusion = Files.createDirectories(tmp.resolve("fusion-escaping"));
        Files.writeString(fusion.resolve("adapter_fusion_config.json"), """
                {"config": {"key": true, "query": true, "value": true, "query_before_ln": false, "regularization": false,
                  "residual_before": false, "temperature": false, "value_before_softmax": true, "value_initialized": false,
                  "dropout_prob": null}, "hidden_size": 16, "model_class": "BertModel", "model_name": "bert-tiny",
                 "model_type": "bert", "name": "f", "adapter_names": ["../escaped"], "version": "adapters.1.2.0"}
                """);
        bad("AdapterFusion naming an adapter outside its folder", "adapter_names: invalid adapter name '../escaped'", "predict",
                "--model", bert.toString(), "--adapter", fusion.toString(), "--text", "w4 w5");

        Files.createDirectories(Path.of("target"));
        Files.write(Path.of("target", "cli-bad-inputs.txt"), TABLE);
    }

    @Test
    void aliasesAreResolvedAndExpansionIsBoundedBelowTheAliasLimit() throws IOException {
        // 9 levels of 5 aliases (45 < 50 aliases) would expand to 5^9 ≈ 2 million values
        StringBuilder bomb = new StringBuilder("a0: &a0 [x, x, x, x, x]\n");
        for (int l = 1; l <= 9; l++) {
            bomb.append("a").append(l).append(": &a").append(l).append(" [");
            for (int i = 0; i < 5; i++) {
                bomb.append(i == 0 ? "" : ", ").append("*a").append(l - 1);
            }
            bomb.append("]\n");
        }
        String err = bad("YAML alias bomb under the alias limit (5^9 values)", "expands to more than 100000 values",
                "train", recipe("bomb2", bomb.toString()).toString());
        assertTrue(err.contains("bomb2.yaml"), err);
        // an ordinary anchor, alias and merge key are read as YAML defines them
        var tree = YamlTree.read("base: &b {r: 4, lora_alpha: 8}\npeft:\n  <<: *b\n  r: 2\nlist: [*b, *b]\n",
                TrainRecipe.yamlFactory(), "t.yaml");
        assertEquals(2, tree.get("peft").get("r").asInt());
        assertEquals(8, tree.get("peft").get("lora_alpha").asInt());
        assertEquals(4, tree.get("list").get(1).get("r").asInt());
    }

    @Test
    void debugFlagAddsTheStackTrace() {
        CliTestSupport.Run r = CliTestSupport.cli("train", tmp.resolve("missing.yaml").toString(), "--debug");
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains("\tat org.peft4j"), r.toString());
    }

    @Test
    void outOfMemoryNamesTheLimitToRaise() {
        String heap = Peft4jCli.outOfMemoryMessage(new OutOfMemoryError("Java heap space"));
        assertTrue(heap.startsWith("out of Java heap memory (heap limit ") && heap.contains("PEFT4J_JAVA_OPTS"), heap);
        String off = Peft4jCli.outOfMemoryMessage(new OutOfMemoryError(
                "Cannot allocate new LongPointer(8): totalBytes = 3G, physicalBytes = 4G"));
        assertTrue(off.startsWith("out of off-heap (ND4J) memory") && off.contains("maxbytes"), off);
    }
}
