package org.peft4j.examples.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** User errors: exit code 2, one line on stderr naming the problem, no stack trace. */
class CliErrorsTest {

    /** Asserts the contract of a user error and returns the message line. */
    private static String userError(CliTestSupport.Run r) {
        assertEquals(2, r.code(), r.toString());
        String err = r.err().strip();
        assertEquals(1, err.lines().count(), "exactly one line on stderr: " + r);
        assertFalse(err.contains("Exception"), "no exception class names: " + r);
        assertFalse(err.contains("\tat "), "no stack trace: " + r);
        assertTrue(err.startsWith("peft4j"), r.toString());
        return err;
    }

    @Test
    void noArgumentsPrintsHelpAndFails() {
        CliTestSupport.Run r = CliTestSupport.cli();
        assertEquals(2, r.code());
        assertTrue(r.out().contains("usage: peft4j <command>"), r.toString());
        assertTrue(r.out().contains("demo"), r.toString());
    }

    @Test
    void helpSucceeds() {
        CliTestSupport.Run r = CliTestSupport.cli("--help");
        assertEquals(0, r.code());
        for (String c : new String[]{"demo", "train", "eval", "predict", "merge", "compare", "info", "logits", "generate", "embed", "data"}) {
            assertTrue(r.out().contains("  " + c + " "), "help lists " + c + ": " + r.out());
        }
        CliTestSupport.Run sub = CliTestSupport.cli("logits", "--help");
        assertEquals(0, sub.code());
        assertTrue(sub.out().startsWith("usage: peft4j logits"), sub.toString());
    }

    @Test
    void unknownCommand() {
        String msg = userError(CliTestSupport.cli("frobnicate"));
        assertTrue(msg.contains("unknown command 'frobnicate'"), msg);
    }

    @Test
    void unknownOption() {
        String msg = userError(CliTestSupport.cli("logits", "--model", "x", "--idz", "1"));
        assertTrue(msg.contains("unknown option --idz"), msg);
        assertTrue(msg.contains("--ids"), "lists the known options: " + msg);
    }

    @Test
    void optionWithoutValue() {
        String msg = userError(CliTestSupport.cli("logits", "--model"));
        assertTrue(msg.contains("option --model needs a value"), msg);
    }

    @Test
    void missingRequiredOption() {
        String msg = userError(CliTestSupport.cli("logits", "--model", CliTestSupport.fixture("decoders/gpt2").toString()));
        assertTrue(msg.contains("missing required option --ids"), msg);
    }

    @Test
    void badIds() {
        String model = CliTestSupport.fixture("decoders/gpt2").toString();
        String msg = userError(CliTestSupport.cli("logits", "--model", model, "--ids", "1,two,3"));
        assertTrue(msg.contains("'two' is not an integer"), msg);
        msg = userError(CliTestSupport.cli("logits", "--model", model, "--ids", "1,64"));
        assertTrue(msg.contains("64") && msg.contains("vocabulary [0, 64)"), msg);
    }

    @Test
    void badNumber() {
        String msg = userError(CliTestSupport.cli("demo", "--epochs", "many"));
        assertTrue(msg.contains("--epochs must be an integer, got 'many'"), msg);
        msg = userError(CliTestSupport.cli("demo", "--lr", "-1"));
        assertTrue(msg.contains("--lr must be a positive number"), msg);
    }

    @Test
    void missingModelFolder(@TempDir Path tmp) {
        String msg = userError(CliTestSupport.cli("info", "--model", tmp.resolve("nope").toString()));
        assertTrue(msg.contains("neither a bundled model") && msg.contains("nope"), msg);
        msg = userError(CliTestSupport.cli("info", "--model", tmp.toString()));
        assertTrue(msg.contains("has no config.json"), msg);
    }

    @Test
    void encoderForGenerate() {
        String msg = userError(CliTestSupport.cli("generate", "--model", CliTestSupport.fixture("bert-tiny").toString(),
                "--prompt-ids", "2,5"));
        assertTrue(msg.contains("needs a decoder"), msg);
    }

    @Test
    void generateWithoutTokenizerNeedsIds() {
        String msg = userError(CliTestSupport.cli("generate", "--model", CliTestSupport.fixture("decoders/gpt2").toString(),
                "--prompt", "hello"));
        assertTrue(msg.contains("no tokenizer.json"), msg);
    }

    @Test
    void badYamlConfigs(@TempDir Path tmp) throws Exception {
        Path missing = tmp.resolve("missing.yaml");
        String msg = userError(CliTestSupport.cli("train", missing.toString()));
        assertTrue(msg.contains("does not exist"), msg);

        Path unknown = tmp.resolve("unknown.yaml");
        Files.writeString(unknown, "model: minilm\ndata: {train: imdb}\npeft: {peft_type: LORA}\nepochz: 3\n");
        msg = userError(CliTestSupport.cli("train", unknown.toString()));
        assertTrue(msg.contains("unknown key 'epochz'"), msg);

        Path badType = tmp.resolve("badtype.yaml");
        Files.writeString(badType, "model: minilm\ndata: {train: imdb}\npeft: {peft_type: NOPE, r: 8}\n");
        msg = userError(CliTestSupport.cli("train", badType.toString()));
        assertTrue(msg.contains("NOPE") && msg.contains("LORA"), "names the type and the installed ones: " + msg);

        Path badTraining = tmp.resolve("badtraining.yaml");
        Files.writeString(badTraining, "model: minilm\ndata: {train: imdb}\npeft: {peft_type: LORA}\ntraining: {learning_rate: -1}\n");
        msg = userError(CliTestSupport.cli("train", badTraining.toString()));
        assertTrue(msg.contains("training.learning_rate must be finite and > 0"), "names the key as written: " + msg);

        Path notYaml = tmp.resolve("broken.yaml");
        Files.writeString(notYaml, "model: [unclosed\n");
        msg = userError(CliTestSupport.cli("train", notYaml.toString()));
        assertTrue(msg.contains("cannot parse"), msg);
    }

    @Test
    void adapterFolderMissing(@TempDir Path tmp) {
        String msg = userError(CliTestSupport.cli("predict", "--model", "minilm", "--adapter", tmp.resolve("none").toString(),
                "--text", "hi"));
        assertTrue(msg.contains("does not exist"), msg);
    }
}
