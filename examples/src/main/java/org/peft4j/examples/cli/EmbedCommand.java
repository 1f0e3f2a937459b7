package org.peft4j.examples.cli;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tokenizer.BatchEncoding;
import org.peft4j.core.tokenizer.Tokenizer;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * {@code peft4j embed --model minilm|bge-small|DIR --text TEXT [--text TEXT2 ...] [--out FILE.json]}:
 * sentence embeddings, mean-pooled over the attention mask and L2-normalised (the
 * sentence-transformers recipe for MiniLM), as {@code {"shape": [N, hidden], "values"}} JSON.
 */
final class EmbedCommand implements Command {
    @Override
    public String name() {
        return "embed";
    }

    @Override
    public String summary() {
        return "sentence embeddings (mean-pooled, L2-normalised) as JSON";
    }

    @Override
    public String usage() {
        return """
                usage: peft4j embed --model minilm|bge-small|DIR --text TEXT [MORE TEXTS...] [--out FILE.json]
                                    [--adapter DIR] [--max-len N]

                Writes sentence embeddings — the last hidden states averaged over the real tokens and
                L2-normalised, as sentence-transformers does for all-MiniLM-L6-v2 — as
                {"shape": [N, hidden], "values": [...]}, one row per text (--text first, then any
                further texts given as plain arguments).
                  --out FILE     write the JSON to FILE instead of stdout
                  --adapter DIR  run the encoder with a saved adapter folder
                  --max-len N    cut longer texts to N tokens (default 512)
                """;
    }

    @Override
    public Set<String> valueOptions() {
        return Set.of("model", "text", "out", "adapter", "max-len");
    }

    @Override
    public void run(Args a, PrintStream out, PrintStream err) throws Exception {
        List<String> texts = new ArrayList<>();
        if (a.has("text")) {
            texts.add(a.get("text"));
        }
        texts.addAll(a.positionals());
        if (texts.isEmpty()) {
            throw new CliException("missing required option --text");
        }
        int maxLen = a.getPositiveInt("max-len", 512);
        Path adapter = a.getPath("adapter");
        Classification.Opened o = Classification.openModel(a.get("model"), adapter, 0);
        try (Models.Base base = Models.requireEncoder(o.base(), "embed"); NoGrad ignored = NoGrad.enter()) {
            Tokenizer tok = base.requireTokenizer("embed");
            int limit = Math.min(maxLen, base.encoder.config().maxPositionEmbeddings());
            BatchEncoding batch = tok.encodeBatch(texts, limit, true, Tokenizer.Padding.LONGEST);
            INDArray e = base.encoder.sentenceEmbedding(batch, true).value();   // [N, hidden]
            TensorJson.write(e, a.getPath("out"), out);
            if (a.has("out")) {
                out.println("wrote " + texts.size() + " embedding(s) of size " + e.size(1) + " to " + a.getPath("out").toAbsolutePath());
            }
        }
    }
}
