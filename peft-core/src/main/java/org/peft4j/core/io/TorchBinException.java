package org.peft4j.core.io;

import java.nio.file.Path;

/**
 * A PyTorch {@code .bin} file ({@code torch.save} zip: a pickle plus raw storages) that peft4j
 * refuses: not a zip, a pickle opcode or global outside the small set a tensor state dict needs
 * (so a file that would run code in Python is rejected here before anything is built), sizes that
 * do not add up, or a missing storage. The message starts with the file and, where one is
 * concerned, the tensor key.
 */
public class TorchBinException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public TorchBinException(Path file, String key, String problem) {
        super(format(file, key, problem));
    }

    public TorchBinException(Path file, String key, String problem, Throwable cause) {
        super(format(file, key, problem), cause);
    }

    private static String format(Path file, String key, String problem) {
        StringBuilder sb = new StringBuilder();
        sb.append(file == null ? "<torch .bin data>" : file.toString()).append(": ");
        if (key != null) {
            sb.append("tensor '").append(key).append("': ");
        }
        return sb.append(problem).toString();
    }
}
