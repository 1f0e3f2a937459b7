package org.peft4j.core.io;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * One file of named tensors, read lazily: a {@code .safetensors} file ({@link SafeTensorsFile}) or
 * a PyTorch {@code .bin} ({@link TorchBinFile}). {@link CheckpointWeights} holds these, so every
 * loader that takes safetensors takes {@code .bin} too.
 */
interface WeightFile extends AutoCloseable {
    Path file();

    List<String> keys();

    boolean contains(String key);

    TensorInfo info(String key);

    INDArray get(String key, boolean widenToFloat);

    ByteBuffer getBytes(String key);

    Map<String, String> metadata();

    @Override
    void close() throws IOException;

    /**
     * Opens {@code file} by its content: a zip (what {@code torch.save} writes) or a name ending
     * in {@code .bin}, {@code .pt} or {@code .pth} is read as a PyTorch checkpoint, anything else as
     * safetensors.
     */
    static WeightFile open(Path file) throws IOException {
        String n = file.getFileName().toString();
        boolean torch = n.endsWith(".bin") || n.endsWith(".pt") || n.endsWith(".pth")
                || java.nio.file.Files.isRegularFile(file) && TorchBinFile.looksLikeZip(file);
        return torch ? TorchBinFile.open(file) : SafeTensorsFile.open(file);
    }
}
