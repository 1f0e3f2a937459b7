package org.peft4j.core.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.model.gpt2.Gpt2LMHeadModel;
import org.peft4j.core.model.llama.LlamaForCausalLM;
import org.peft4j.core.nn.Module;
import org.peft4j.core.tensor.NoGrad;

/**
 * The repository's tiny Hugging Face-layout checkpoints (peft-core test fixtures) and the Python
 * reference check, shared through peft-core's test-jar by every method module's tests.
 */
public final class RepoFixtures {
    private RepoFixtures() {
    }

    /** The repository root, found from the module folder the tests run in. */
    public static Path repoRoot() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.isDirectory(p.resolve("scripts/reference"))) {
            p = p.getParent();
        }
        if (p == null) {
            throw new IllegalStateException("cannot find the repository root (a folder with scripts/reference) above "
                    + Path.of("").toAbsolutePath());
        }
        return p;
    }

    /** {@code peft-core/src/test/resources/fixtures/<name>}. */
    public static Path core(String name) {
        return repoRoot().resolve("peft-core/src/test/resources/fixtures").resolve(name);
    }

    /** A core fixture loaded as {@code bert} (BertModel), {@code gpt2} or {@code llama} (causal LMs). */
    public static Module loadBase(String family, String fixture) {
        Path dir = core(fixture);
        try {
            return switch (family) {
                case "bert" -> BertModel.load(dir);
                case "gpt2" -> Gpt2LMHeadModel.load(dir);
                case "llama" -> LlamaForCausalLM.load(dir);
                default -> throw new IllegalArgumentException("unknown family " + family);
            };
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** BERT: last_hidden_state; decoders: logits. */
    public static INDArray output(Module model, INDArray ids, INDArray mask, INDArray types) {
        try (NoGrad ignored = NoGrad.enter()) {
            if (model instanceof BertModel b) {
                return b.forward(ids, mask, types).lastHiddenState().value().dup();
            }
            return ((DecoderLM) model).forward(ids, mask).value().dup();
        }
    }

    /** Whether Debian's {@code /usr/bin/python3} can import torch and numpy (the Python reference checks). */
    public static boolean pythonTorchAvailable() {
        if (!Files.isExecutable(Path.of("/usr/bin/python3"))) {
            return false;
        }
        try {
            Process p = new ProcessBuilder("/usr/bin/python3", "-c", "import torch, numpy").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(2, TimeUnit.MINUTES) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }
}
