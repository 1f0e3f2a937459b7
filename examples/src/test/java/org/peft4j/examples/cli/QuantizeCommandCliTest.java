package org.peft4j.examples.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code peft4j quantize} writes a quantized folder; bad settings are user errors. */
class QuantizeCommandCliTest {

    @Test
    void quantizesATinyLlamaFolderToNf4(@TempDir Path tmp) throws Exception {
        Path model = CliTestSupport.copyModel("decoders/llama-gqa", tmp.resolve("model"));
        Path out = tmp.resolve("nf4");
        CliTestSupport.Run r = CliTestSupport.cli("quantize", "--model", model.toString(), "--out", out.toString(),
                "--type", "nf4", "--block-size", "64", "--double-quant");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("layers quantized"), r.toString());
        assertTrue(Files.isRegularFile(out.resolve("config.json")), "config.json written");
        assertTrue(Files.list(out).anyMatch(p -> p.getFileName().toString().endsWith(".safetensors")), "weights written");
    }

    @Test
    void badBlockSizeIsAUserError(@TempDir Path tmp) throws Exception {
        Path model = CliTestSupport.copyModel("decoders/llama-gqa", tmp.resolve("model"));
        CliTestSupport.Run r = CliTestSupport.cli("quantize", "--model", model.toString(), "--out",
                tmp.resolve("bad").toString(), "--block-size", "100");
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains("100"), "names the bad block size: " + r);
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r);
        assertFalse(Files.exists(tmp.resolve("bad")), "nothing written");
    }
}
