package org.peft4j.lora;

import java.nio.file.Path;

import org.peft4j.core.testing.RepoFixtures;

/** This module's LoRA fixtures; the shared checkpoints and helpers are in {@link RepoFixtures}. */
final class Fixtures {
    private Fixtures() {
    }

    /** {@code peft-lora/src/test/resources/fixtures/lora/<name>}. */
    static Path lora(String name) {
        return RepoFixtures.repoRoot().resolve("peft-lora/src/test/resources/fixtures/lora").resolve(name);
    }
}
