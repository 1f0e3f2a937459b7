package org.peft4j.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Runs the README's program on a tiny budget so the quoted snippet cannot rot. */
class QuickStartTest {
    @Test
    void trainsSavesReloadsAndMerges(@TempDir Path tmp) {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        Path dir = tmp.resolve("adapter");
        QuickStart.Result r = QuickStart.run(3, dir, new PrintStream(buf, true, StandardCharsets.UTF_8));
        String out = buf.toString(StandardCharsets.UTF_8);

        // LoRA r 8 on query+value in 6 layers: 6 x 2 x (8 x 384 + 384 x 8) = 73,728; the head copy 384 x 2 + 2 = 770.
        // All: the encoder's 22,565,376 + 73,728 LoRA + the original head 770 + its trainable copy 770.
        assertEquals("trainable params: 74,498 || all params: 22,640,644 || trainable%: 0.3290", r.trainableParameters());
        assertTrue(out.contains(r.trainableParameters()), out);
        assertTrue(out.contains("step 3/3"), "progress lines: " + out);
        assertTrue(Files.isRegularFile(dir.resolve("adapter_config.json")));
        assertTrue(Files.isRegularFile(dir.resolve("adapter_model.safetensors")));

        assertArrayEquals(new long[]{2, 2}, r.trained().shape());
        // reloading into a fresh model (different head seed) restores the trained model exactly
        assertArrayEquals(flat(r.trained()), flat(r.reloaded()), 1e-6f);
        // merging folds B·A·scale into the weights: same outputs up to fp32 rounding
        assertArrayEquals(flat(r.reloaded()), flat(r.merged()), 1e-4f);
        // three steps moved the head away from its init: the two probes get different logits
        assertTrue(r.trained().getRow(0).sub(r.trained().getRow(1)).amaxNumber().doubleValue() > 0);
    }

    private static float[] flat(org.nd4j.linalg.api.ndarray.INDArray a) {
        return a.dup('c').data().asFloat();
    }
}
