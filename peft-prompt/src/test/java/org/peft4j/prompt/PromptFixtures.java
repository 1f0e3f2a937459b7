package org.peft4j.prompt;

import org.peft4j.core.testing.RepoFixtures;
import org.peft4j.core.model.decoder.CausalLMs;
import org.peft4j.core.model.decoder.DecoderLM;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The tiny decoder checkpoints (peft-core test fixtures) and this module's PEFT-layout prompt folders. */
final class PromptFixtures {
    private PromptFixtures() {
    }

    static Path repoRoot() {
        return RepoFixtures.repoRoot();
    }

    /** {@code peft-core/src/test/resources/fixtures/decoders/<name>} loaded as a causal LM. */
    static DecoderLM decoder(String name) {
        try {
            return CausalLMs.load(repoRoot().resolve("peft-core/src/test/resources/fixtures/decoders").resolve(name));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * {@code peft-core/src/test/resources/fixtures/bert-tiny} with a new 2-class head that pools
     * with the pooler (transformers' {@code BertForSequenceClassification}), in eval mode; the
     * prompt fixtures' adapter folders carry the head's trained weights.
     */
    static org.peft4j.core.model.bert.BertForSequenceClassification bertClassifier() {
        org.peft4j.core.model.bert.BertModel bert = org.peft4j.core.model.bert.BertModel.load(
                repoRoot().resolve("peft-core/src/test/resources/fixtures/bert-tiny"));
        var m = org.peft4j.core.model.bert.BertForSequenceClassification.withNewHead(bert, 2,
                org.peft4j.core.model.bert.BertConfig.Pooling.POOLER, new org.peft4j.core.tensor.Rng(0));
        m.eval();
        return m;
    }

    /** {@code peft-prompt/src/test/resources/fixtures/prompt/<name>} (written by make_prompt_fixtures.py). */
    static Path prompt(String name) {
        return repoRoot().resolve("peft-prompt/src/test/resources/fixtures/prompt").resolve(name);
    }

    static Path script() {
        return repoRoot().resolve("scripts/reference/make_prompt_fixtures.py");
    }
}
