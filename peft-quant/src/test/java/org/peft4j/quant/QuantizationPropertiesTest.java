package org.peft4j.quant;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.tensor.Rng;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.peft4j.quant.QuantStats.gaussian;
import static org.peft4j.quant.QuantStats.rmse;
import static org.peft4j.quant.QuantStats.uniform4bit;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The properties the QLoRA paper relies on, measured on this implementation: NF4 reconstructs
 * Gaussian weights better than FP4 and than plain 4-bit uniform absmax quantization; double
 * quantization stores about 4.13 bits per weight; bad block sizes are refused.
 */
class QuantizationPropertiesTest {
    private static final Logger LOG = LoggerFactory.getLogger(QuantizationPropertiesTest.class);

    @Test
    void nf4BeatsFp4AndUniformOnGaussianWeights() {
        int n = 1 << 20;
        long[] shape = {1024, 1024};
        for (int block : new int[]{64, 256}) {
            float[] x = gaussian(42 + block, n, 0.02);
            double nf4 = rmse(x, Quantized4bit.quantize(x, shape, QuantType.NF4, block, false).dequantize());
            double fp4 = rmse(x, Quantized4bit.quantize(x, shape, QuantType.FP4, block, false).dequantize());
            double uni = rmse(x, uniform4bit(x, block));
            double nf4dq = rmse(x, Quantized4bit.quantize(x, shape, QuantType.NF4, block, true).dequantize());
            LOG.info("block {}: RMSE NF4 {} (double-quant {}), FP4 {}, uniform int4 {}", block, nf4, nf4dq, fp4, uni);
            assertTrue(nf4 < fp4, "block " + block + ": NF4 " + nf4 + " !< FP4 " + fp4);
            assertTrue(nf4 < uni, "block " + block + ": NF4 " + nf4 + " !< uniform " + uni);
            // double quantization of the scales costs little accuracy
            assertTrue(nf4dq < nf4 * 1.02, "double-quant NF4 " + nf4dq + " vs " + nf4);
        }
    }

    @Test
    void doubleQuantizedStorageIsAtMost052BytesPerParameter() {
        int out = 1024;
        int in = 4096;
        float[] x = gaussian(7, out * in, 0.02);
        Quantized4bit dq = Quantized4bit.quantize(x, new long[]{out, in}, QuantType.NF4, 64, true);
        Quantized4bit plain = Quantized4bit.quantize(x, new long[]{out, in}, QuantType.NF4, 64, false);
        long n = (long) out * in;
        // from the buffers themselves
        long bytes = dq.packedCodes().length + dq.absmaxCodes().length + 4L * dq.nestedAbsmax().length
                + 4L * dq.quantMap().length + 4L * QuantMaps.dynamicSignedCpu().length + 4;
        assertEquals(bytes, dq.storageBytes());
        double perParam = (double) dq.storageBytes() / n;
        // and from what a save writes (every tensor of the state dict, incl. the JSON quant_state)
        long saved = 0;
        for (Map.Entry<String, INDArray> e : dq.toStateDict("layer").entrySet()) {
            saved += e.getValue().length() * e.getValue().dataType().width();
        }
        double savedPerParam = (double) saved / n;
        double plainPerParam = (double) plain.storageBytes() / n;
        LOG.info("bytes/param: double-quant {} (saved tensors {}), plain {}", perParam, savedPerParam, plainPerParam);
        assertTrue(perParam <= 0.52, "double-quant bytes/param " + perParam);
        assertTrue(savedPerParam <= 0.52, "saved bytes/param " + savedPerParam);
        assertTrue(plainPerParam > 0.56, "fp32 scales cost 4/64 bytes per parameter: " + plainPerParam);
        assertEquals(n / 2, dq.packedCodes().length, "two codes per byte");
    }

    @Test
    void blockSizesMustBePowersOfTwoFrom32To4096() {
        float[] x = gaussian(1, 8192, 1);
        for (int ok : new int[]{32, 64, 128, 256, 512, 1024, 2048, 4096}) {
            assertEquals(ok, Quantized4bit.quantize(x, new long[]{8192}, QuantType.NF4, ok, false).blockSize());
        }
        for (int bad : new int[]{0, -64, 16, 48, 100, 8192}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Quantized4bit.quantize(x, new long[]{8192}, QuantType.NF4, bad, false));
            assertTrue(e.getMessage().contains("block size " + bad) && e.getMessage().contains("power of two"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> QuantConfig.builder().blockSize(bad).build());
        }
        assertThrows(IllegalArgumentException.class, () -> QuantType.parse("nf5"));
        assertThrows(IllegalArgumentException.class, () -> QuantConfig.builder().int8Threshold(-1f).build());
    }

    @Test
    void nearestCodeSearchEqualsTheFullArgmin() {
        // the binary-search shortcut against the literal argmin over all 16 codes (first index on ties)
        for (QuantType t : new QuantType[]{QuantType.NF4, QuantType.FP4}) {
            float[] table = QuantMaps.fourBit(t);
            FourBitQuantizer.Nearest4 nearest = new FourBitQuantizer.Nearest4(table);
            Rng rng = new Rng(3);
            for (int i = 0; i < 200_000; i++) {
                float s = i < 1000 ? -1f + i / 500f : (float) (2 * rng.nextDouble() - 1);
                if (i % 7 == 0) {
                    // near a midpoint
                    int k = (int) (rng.nextDouble() * 15);
                    float[] sorted = table.clone();
                    java.util.Arrays.sort(sorted);
                    s = (sorted[k] + sorted[k + 1]) / 2 + (float) ((rng.nextDouble() - 0.5) * 1e-6);
                }
                int best = 0;
                float bd = Math.abs(s - table[0]);
                for (int k = 1; k < 16; k++) {
                    float d = Math.abs(s - table[k]);
                    if (d < bd) {
                        bd = d;
                        best = k;
                    }
                }
                assertEquals(best, nearest.index(s), t + " at " + s);
            }
            assertEquals(0, nearest.index(Float.NaN));
        }
    }
}
