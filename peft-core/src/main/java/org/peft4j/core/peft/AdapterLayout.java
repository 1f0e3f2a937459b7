package org.peft4j.core.peft;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.nn.Module;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * How adapters are laid out in a folder: which files, which config JSON, which tensor keys.
 * {@link PeftModel#save} and {@link PeftModel#load} go through a layout, so every method gets
 * atomic saving, strict loading and every CLI command that takes {@code --adapter}. Two are
 * built in ({@link AdapterLayouts}): Hugging Face PEFT's ({@link PeftLayout}) and AdapterHub's
 * ({@link AdapterHubLayout}); more can be listed in
 * {@code META-INF/services/org.peft4j.core.peft.AdapterLayout}.
 *
 * <p>Inside peft4j an adapter's tensors carry the keys {@link PeftModel} derives from its layers
 * ({@code base_model.model.<layer path>.<saved suffix>}, the "saved keys"); a layout translates
 * them to and from what its files hold.
 */
public interface AdapterLayout {

    /** One adapter stored in a folder: loaded as {@code name}, stored under {@code savedName}, from {@code folder}. */
    record StoredAdapter(String name, String savedName, PeftConfig config, Path folder) {
    }

    /** A short name for messages ({@code "peft"}, {@code "adapterhub"}). */
    String name();

    /** Whether adapters with this config are written in this layout. */
    boolean writes(PeftConfig config);

    /** Whether {@code dir} holds a folder in this layout (decided from its config file(s), cheaply). */
    boolean recognizes(Path dir);

    /**
     * The adapters of {@code dir} in the order they must be loaded; the last one is the one the
     * folder is about (it becomes active). {@code loadAs} names a single adapter when loaded.
     *
     * @throws IllegalArgumentException naming the file and key when a config is unreadable
     */
    List<StoredAdapter> list(Path dir, String loadAs);

    /** The folder below a save root that adapter {@code name} is written to. */
    Path folder(Path root, String name, PeftConfig config, String activeAdapter);

    /**
     * Writes one adapter's config and tensors ({@code state}: saved keys → values) into
     * {@code folder} (created; the caller stages and swaps the whole save in atomically).
     */
    void write(Path folder, String name, PeftConfig config, Map<String, INDArray> state, Module model) throws IOException;

    /**
     * Reads one adapter's tensors and returns them under saved keys; {@code expected} are the keys
     * the model's layers declare (a layout may use them to resolve prefixes). Keys it cannot
     * translate are returned unchanged, so the strict loader reports them as unexpected.
     */
    Map<String, INDArray> read(StoredAdapter adapter, Set<String> expected);

    /** The file(s) {@link #read} reads, for messages. */
    String source(StoredAdapter adapter);
}
