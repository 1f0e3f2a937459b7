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

    /**
     * The quantized folder loads like any other model folder: {@code logits} on it stays close to
     * PyTorch's fp32 reference logits of the same fixture (NF4 rounding of the random weights moves
     * them a little, so the check is a cosine similarity, not an equality) and is not the fp32 output.
     */
    @Test
    void quantizedFolderLoadsLikeAnyOther(@TempDir Path tmp) throws Exception {
        Path model = CliTestSupport.copyModel("decoders/llama-gqa", tmp.resolve("model"));
        Path out = tmp.resolve("nf4");
        assertEquals(0, CliTestSupport.cli("quantize", "--model", model.toString(), "--out", out.toString()).code());

        java.util.Map<String, org.nd4j.linalg.api.ndarray.INDArray> ref =
                org.peft4j.core.io.SafeTensors.load(CliTestSupport.fixture("decoders/llama-gqa").resolve("reference.safetensors"));
        org.nd4j.linalg.api.ndarray.INDArray ids = ref.get("input_ids");
        org.nd4j.linalg.api.ndarray.INDArray mask = ref.get("attention_mask");
        org.nd4j.linalg.api.ndarray.INDArray logits = ref.get("logits");      // [B, T, V]
        // the first fully real row
        int b = 0;
        while (mask.getRow(b).minNumber().intValue() == 0) {
            b++;
        }
        long[] row = ids.getRow(b).toLongVector();
        int last = row.length - 1;
        String idList = java.util.Arrays.stream(row).mapToObj(Long::toString).collect(java.util.stream.Collectors.joining(","));
        Path json = tmp.resolve("logits.json");
        CliTestSupport.Run r = CliTestSupport.cli("logits", "--model", out.toString(), "--ids", idList, "--out", json.toString());
        assertEquals(0, r.code(), r.toString());
        long vocab = logits.size(2);
        float[] got = CliTestSupport.values(CliTestSupport.JSON.readTree(json.toFile()), 1, vocab);
        double dot = 0;
        double ng = 0;
        double nr = 0;
        double maxDiff = 0;
        for (int v = 0; v < vocab; v++) {
            double e = logits.getDouble(b, last, v);
            dot += got[v] * e;
            ng += got[v] * got[v];
            nr += e * e;
            maxDiff = Math.max(maxDiff, Math.abs(got[v] - e));
        }
        double cos = dot / Math.sqrt(ng * nr);
        // measured 0.937 on this tiny random model (hidden 64, NF4 blocks of 64): rounding noise, not garbage
        assertTrue(cos > 0.9, "NF4 logits follow the fp32 reference: cosine " + cos);
        assertTrue(maxDiff > 1e-5, "the quantized folder really runs quantized (max |diff| " + maxDiff + ")");

        // and they are exactly what the library computes from that folder
        org.peft4j.core.model.decoder.DecoderLM lm =
                (org.peft4j.core.model.decoder.DecoderLM) org.peft4j.quant.QuantizedModels.load(out);
        org.nd4j.linalg.api.ndarray.INDArray in = org.nd4j.linalg.factory.Nd4j.createFromArray(row).reshape(1, row.length);
        org.nd4j.linalg.api.ndarray.INDArray lib;
        try (org.peft4j.core.tensor.NoGrad ignored = org.peft4j.core.tensor.NoGrad.enter()) {
            lib = lm.forward(in, null).value();
        }
        double libDiff = 0;
        for (int v = 0; v < vocab; v++) {
            libDiff = Math.max(libDiff, Math.abs(got[v] - lib.getDouble(0, last, v)));
        }
        assertTrue(libDiff <= 1e-5, "CLI vs QuantizedModels.load forward: max |diff| " + libDiff);

        CliTestSupport.Run info = CliTestSupport.cli("info", "--model", out.toString());
        assertEquals(0, info.code(), info.toString());
        CliTestSupport.Run gen = CliTestSupport.cli("generate", "--model", out.toString(), "--prompt-ids", idList, "--max-new-tokens", "3");
        assertEquals(0, gen.code(), gen.toString());
        assertTrue(gen.out().contains("generated ids: "), gen.toString());
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
