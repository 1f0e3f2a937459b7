package org.peft4j.lora;

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

/** The repository's tiny Hugging Face-layout checkpoints (peft-core test fixtures) and this module's LoRA fixtures. */
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

    /** {@code peft-lora/src/test/resources/fixtures/lora/<name>}. */
    static Path lora(String name) {
        return repoRoot().resolve("peft-lora/src/test/resources/fixtures/lora").resolve(name);
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
