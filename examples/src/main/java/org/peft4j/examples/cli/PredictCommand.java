package org.peft4j.examples.cli;

import org.peft4j.core.data.TextExample;
import org.peft4j.core.train.Example;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** {@code peft4j predict --model M --adapter A --text TEXT [MORE TEXTS...]}: labels with probabilities. */
final class PredictCommand implements Command {
    @Override
    public String name() {
        return "predict";
    }

    @Override
    public String summary() {
        return "classify texts with a trained adapter (or a merged classifier folder)";
    }

    @Override
    public String usage() {
        return """
                usage: peft4j predict [--model M] [--adapter DIR] --text TEXT [MORE TEXTS...] [--max-len N]

                Prints the predicted label and its probability for each text (--text first, then any further
                texts given as plain arguments).
                  --model M      minilm, bge-small or a folder; defaults to the adapter's base_model_name_or_path.
                                 Without --adapter, M must be a classification folder (e.g. from peft4j merge).
                  --adapter DIR  an adapter folder written by peft4j demo / train
                  --max-len N    tokens per text (default: what the adapter was trained with, else 128)
                """;
    }

    @Override
    public Set<String> valueOptions() {
        return Set.of("model", "adapter", "text", "max-len");
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
        Integer maxLen = a.has("max-len") ? a.getPositiveInt("max-len", 128) : null;
        try (Classification.Classifier c = Classification.open(a.get("model"), a.getPath("adapter"), maxLen, 0)) {
            List<Example> ex = Classification.encode(c.tokenizer(), texts.stream().map(t -> new TextExample(t, 0)).toList(),
                    c.maxLength);
            float[][] logits = c.predictLogits(ex);
            for (int i = 0; i < texts.size(); i++) {
                float[] p = Classification.softmax(logits[i]);
                int k = Classification.argmax(logits[i]);
                out.printf(Locale.ROOT, "%-10s %5.1f%%  %s%n", c.labels.get(k), 100 * p[k], Fmt.snippet(texts.get(i), 100));
            }
        }
    }
}
