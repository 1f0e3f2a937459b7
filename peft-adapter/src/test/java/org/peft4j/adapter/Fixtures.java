package org.peft4j.adapter;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.model.gpt2.Gpt2LMHeadModel;
import org.peft4j.core.model.llama.LlamaForCausalLM;
import org.peft4j.core.nn.Module;
import org.peft4j.core.tensor.NoGrad;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The repository's tiny Hugging Face-layout checkpoints (peft-core test fixtures) and this module's fixtures. */
final class Fixtures {
    private Fixtures() {
    }

    /** The repository root, found from the module folder the tests run in. */
    static Path repoRoot() {
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
    static Path core(String name) {
        return repoRoot().resolve("peft-core/src/test/resources/fixtures").resolve(name);
    }

    /** {@code peft-adapter/src/test/resources/fixtures/<name>}. */
    static Path fixture(String name) {
        return repoRoot().resolve("peft-adapter/src/test/resources/fixtures").resolve(name);
    }

    static boolean pythonTorchAvailable() {
        if (!Files.isExecutable(Path.of("/usr/bin/python3"))) {
            return false;
        }
        try {
            Process p = new ProcessBuilder("/usr/bin/python3", "-c", "import torch, numpy").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(2, java.util.concurrent.TimeUnit.MINUTES) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    /** Max |a − b| over all elements, or over positions where {@code mask [b, s]} is 1 for {@code [b, s, v]} outputs. */
    static double maxAbsDiff(INDArray a, INDArray b, INDArray mask) {
        INDArray d = a.castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE).sub(b.castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE));
        if (mask != null) {
            long[] s = d.shape();
            d.muli(mask.castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE).reshape(s[0], s[1], 1).broadcast(s));
        }
        return absMax(d);
    }

    private static double absMax(INDArray d) {
        return d.amaxNumber().doubleValue();
    }

    static Module loadBase(String family, String fixture) {
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
    static INDArray output(Module model, INDArray ids, INDArray mask, INDArray types) {
        try (NoGrad ignored = NoGrad.enter()) {
            if (model instanceof BertModel b) {
                return b.forward(ids, mask, types).lastHiddenState().value().dup();
            }
            return ((DecoderLM) model).forward(ids, mask).value().dup();
        }
    }
}
