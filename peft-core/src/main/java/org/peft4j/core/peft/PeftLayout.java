package org.peft4j.core.peft;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.CheckpointWeights;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.nn.Module;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Hugging Face PEFT's folder ({@code save_pretrained}): {@code adapter_config.json} (with
 * {@code peft_type}; indent 2, sorted keys) and {@code adapter_model.safetensors} (or the legacy
 * {@code adapter_model.bin}, read by the restricted unpickler) holding the saved keys as they are;
 * the adapter named {@code default} in the folder itself, any other in {@code <dir>/<name>/}.
 */
public final class PeftLayout implements AdapterLayout {

    @Override
    public String name() {
        return "peft";
    }

    @Override
    public boolean writes(PeftConfig config) {
        return !(config instanceof AdapterHubConfig);
    }

    @Override
    public boolean recognizes(Path dir) {
        return Files.isRegularFile(dir.resolve(PeftModel.CONFIG_NAME));
    }

    @Override
    public List<StoredAdapter> list(Path dir, String loadAs) {
        return List.of(new StoredAdapter(loadAs, loadAs, PeftConfig.readPeftJson(dir), dir));
    }

    @Override
    public Path folder(Path root, String name, PeftConfig config, String activeAdapter) {
        return name.equals(PeftModel.DEFAULT_ADAPTER) ? root : root.resolve(name);
    }

    @Override
    public void write(Path folder, String name, PeftConfig config, Map<String, INDArray> state, Module model) throws IOException {
        PeftConfig c = config.copy();
        c.setPeftVersion(PeftModel.PEFT4J_VERSION);
        c.setInferenceMode(true); // PEFT writes inference_mode=true
        Files.writeString(folder.resolve(PeftModel.CONFIG_NAME), c.toJson(), StandardCharsets.UTF_8);
        SafeTensors.write(folder.resolve(PeftModel.WEIGHTS_NAME), new TreeMap<>(state), Map.of("format", "pt"));
    }

    static Path weightsFile(Path dir) {
        Path file = dir.resolve(PeftModel.WEIGHTS_NAME);
        if (!Files.isRegularFile(file) && Files.isRegularFile(dir.resolve(PeftModel.TORCH_WEIGHTS_NAME))) {
            // PEFT's legacy format, read by the restricted unpickler (no code in it can run)
            file = dir.resolve(PeftModel.TORCH_WEIGHTS_NAME);
        }
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("no " + PeftModel.WEIGHTS_NAME + " (or " + PeftModel.TORCH_WEIGHTS_NAME + ") in " + dir);
        }
        return file;
    }

    @Override
    public Map<String, INDArray> read(StoredAdapter adapter, Set<String> expected) {
        return readAll(weightsFile(adapter.folder()));
    }

    /** Every tensor of a {@code .safetensors} or {@code torch.save} file, in file order. */
    static Map<String, INDArray> readAll(Path file) {
        try (CheckpointWeights w = CheckpointWeights.openFile(file)) {
            return new LinkedHashMap<>(w.readAll(true));
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    @Override
    public String source(StoredAdapter adapter) {
        return weightsFile(adapter.folder()).toString();
    }
}
