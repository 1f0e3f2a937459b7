package org.peft4j.quant;

import org.peft4j.core.io.HfFolder;
import org.peft4j.core.nn.Module;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The implementation of {@code peft4j quantize --model DIR --out DIR [--type nf4|fp4|int8]
 * [--block-size 64] [--double-quant]}: reads a Hugging Face checkpoint folder (LLaMA/Mistral/Qwen2,
 * GPT-2 or BERT), quantizes its linear layers (all but the output head) while loading — layer by
 * layer for the LLaMA family, so the fp32 model is never held whole — and writes a quantized folder
 * ({@link QuantizedModels#save}) that {@link QuantizedModels#load(Path)} loads like any other. Other
 * files of the folder (tokenizer, generation config) are copied along.
 */
public final class QuantizeCommand {
    private static final Logger LOG = LoggerFactory.getLogger(QuantizeCommand.class);

    /** What was written. */
    public record Summary(Path output, String modelClass, QuantConfig config, int quantizedLayers, long quantizedParameters,
                          long quantizedBytes, long otherParameters, double seconds) {
        public double bytesPerParameter() {
            return quantizedParameters == 0 ? 0 : (double) quantizedBytes / quantizedParameters;
        }

        /** One line for the console. */
        public String describe() {
            return String.format(Locale.ROOT, "wrote %s: %s, %d layers quantized to %s (%,d parameters in %,d bytes, "
                            + "%.4f bytes/param), %,d fp32 parameters kept, %.1f s", output, modelClass, quantizedLayers, config,
                    quantizedParameters, quantizedBytes, bytesPerParameter(), otherParameters, seconds);
        }
    }

    private QuantizeCommand() {
    }

    /** The command's usage text. */
    public static String usage() {
        return "peft4j quantize --model DIR --out DIR [--type nf4|fp4|int8] [--block-size 64] [--double-quant]\n"
                + "  --type         nf4 (default), fp4 or int8 (LLM.int8 row-wise, outlier threshold 6.0)\n"
                + "  --block-size   4-bit block size, a power of two from 32 to 4096 (default 64)\n"
                + "  --double-quant also quantize the 4-bit block scales to 8 bits (about 0.516 bytes/param)";
    }

    /**
     * Quantizes {@code modelDir} into {@code outDir}.
     *
     * @param type        nf4, fp4 or int8
     * @param blockSize   the 4-bit block size (ignored for int8)
     * @param doubleQuant double-quantize the 4-bit scales
     * @throws IllegalArgumentException for a bad type or block size, a missing model folder, or
     *                                  {@code outDir} equal to {@code modelDir}
     */
    public static Summary run(Path modelDir, Path outDir, String type, int blockSize, boolean doubleQuant) throws IOException {
        QuantType t = QuantType.parse(type);
        QuantConfig.Builder b = QuantConfig.builder().type(t).doubleQuant(doubleQuant && t.isFourBit());
        if (t.isFourBit()) {
            b.blockSize(blockSize);
        }
        return run(modelDir, outDir, b.build());
    }

    /** As {@link #run(Path, Path, String, int, boolean)} with a full config. */
    public static Summary run(Path modelDir, Path outDir, QuantConfig config) throws IOException {
        if (modelDir == null || !Files.isDirectory(modelDir)) {
            throw new IllegalArgumentException("--model " + modelDir + ": no such folder");
        }
        if (!Files.isRegularFile(modelDir.resolve(HfFolder.CONFIG_FILE))) {
            throw new IllegalArgumentException("--model " + modelDir + ": no " + HfFolder.CONFIG_FILE + " (not a checkpoint folder)");
        }
        if (outDir == null) {
            throw new IllegalArgumentException("--out must be given");
        }
        if (outDir.toAbsolutePath().normalize().equals(modelDir.toAbsolutePath().normalize())) {
            throw new IllegalArgumentException("--out must differ from --model (" + outDir + ")");
        }
        if (QuantizedModels.isQuantizedFolder(modelDir)) {
            throw new IllegalArgumentException("--model " + modelDir + " is already quantized");
        }
        long t0 = System.nanoTime();
        Module model = QuantizedModels.load(modelDir, config);
        Quantizer.Stats stats = Quantizer.stats(model);
        if (stats.layers() == 0) {
            throw new IllegalArgumentException(modelDir + ": no linear layer selected for quantization by " + config);
        }
        QuantizedModels.save(model, outDir);
        QuantizedModels.copySideFiles(modelDir, outDir);
        double seconds = (System.nanoTime() - t0) / 1e9;
        Summary s = new Summary(outDir, model.getClass().getSimpleName(), config, stats.layers(), stats.quantizedParameters(),
                stats.quantizedBytes(), stats.otherParameters(), seconds);
        LOG.info(s.describe());
        return s;
    }
}
