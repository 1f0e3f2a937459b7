package org.peft4j.adapter;

import org.peft4j.core.testing.RepoFixtures;
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

    /** {@code peft-adapter/src/test/resources/fixtures/<name>}. */
    static Path fixture(String name) {
        return RepoFixtures.repoRoot().resolve("peft-adapter/src/test/resources/fixtures").resolve(name);
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
}
