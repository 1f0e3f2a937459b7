package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.data.TextExample;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.train.Example;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** {@code peft4j eval --model M --adapter A --data imdb|FILE}: accuracy of a classifier on labelled text. */
final class EvalCommand implements Command {
    @Override
    public String name() {
        return "eval";
    }

    @Override
    public String summary() {
        return "accuracy of a classifier (base model + adapter, or merged folder) on labelled data";
    }

    @Override
    public String usage() {
        return """
                usage: peft4j eval [--model M] [--adapter DIR] --data imdb[:SPLIT]|FILE [--text-field F] [--label-field F]
                                   [--labels a,b] [--max-len N] [--limit N] [--out FILE.json]

                Classifies every example and reports accuracy, mean cross-entropy and the confusion counts.
                  --model M      minilm, bge-small or a folder; defaults to the adapter's base_model_name_or_path.
                                 Without --adapter, M must be a classification folder (e.g. from peft4j merge).
                  --adapter DIR  an adapter folder written by peft4j demo / train (PEFT layout)
                  --data D       'imdb' = the bundled IMDB test split (imdb:train, imdb:validation also work),
                                 or a .jsonl / .csv / .tsv file (optionally .gz)
                  --text-field F, --label-field F   field names in the file (default text, label)
                  --labels a,b   class names when the file's labels are names (in class-index order)
                  --max-len N    tokens per text (default: what the adapter was trained with, else 128)
                  --limit N      only the first N examples
                  --out FILE     also write the metrics as JSON
                """;
    }

    @Override
    public Set<String> valueOptions() {
        return Set.of("model", "adapter", "data", "text-field", "label-field", "labels", "max-len", "limit", "out");
    }

    @Override
    public void run(Args a, PrintStream out, PrintStream err) throws Exception {
        a.expectPositionals(0, "no arguments");
        String dataSpec = a.require("data");
        DataSources.Labelled data = DataSources.load(dataSpec, "test", a.get("text-field"), a.get("label-field"),
                DataSources.splitList(a.get("labels")));
        List<TextExample> texts = DemoCommand.limit(data.examples(), a.getInt("limit", 0));
        Integer maxLen = a.has("max-len") ? a.getPositiveInt("max-len", 128) : null;
        try (Classification.Classifier c = Classification.open(a.get("model"), a.getPath("adapter"), maxLen, 0)) {
            int classes = c.labels.size();
            for (TextExample t : texts) {
                if (t.label() >= classes) {
                    throw new CliException(data.source() + ": label " + t.label() + " is outside the classifier's "
                            + classes + " classes " + c.labels);
                }
            }
            long t0 = System.nanoTime();
            List<Example> ex = Classification.encode(c.tokenizer(), texts, c.maxLength);
            float[][] logits = c.predictLogits(ex);
            double seconds = Fmt.secondsSince(t0);
            double acc = Classification.accuracy(logits, ex);
            double loss = 0;
            long[][] confusion = new long[classes][classes];
            for (int i = 0; i < ex.size(); i++) {
                float[] p = Classification.softmax(logits[i]);
                loss -= Math.log(Math.max(p[ex.get(i).label()], 1e-30));
                confusion[ex.get(i).label()][Classification.argmax(logits[i])]++;
            }
            loss /= Math.max(1, ex.size());
            out.printf(Locale.ROOT, "data: %s (%s examples, max %d tokens)%n", data.source(), Fmt.count(ex.size()), c.maxLength);
            out.printf(Locale.ROOT, "accuracy: %s%n", Fmt.pct(acc));
            out.printf(Locale.ROOT, "eval_loss: %.4f%n", loss);
            out.println("confusion (rows = true label, columns = predicted):");
            for (int i = 0; i < classes; i++) {
                StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "  %-12s", c.labels.get(i)));
                for (int j = 0; j < classes; j++) {
                    sb.append(String.format(Locale.ROOT, " %7d", confusion[i][j]));
                }
                out.println(sb);
            }
            out.printf(Locale.ROOT, "time: %s%n", Fmt.duration(seconds));
            Path outFile = a.getPath("out");
            if (outFile != null) {
                ObjectNode n = JsonFiles.mapper().createObjectNode();
                n.put("data", data.source());
                n.put("examples", ex.size());
                n.put("accuracy", acc);
                n.put("eval_loss", loss);
                n.put("max_length", c.maxLength);
                n.put("seconds", seconds);
                AtomicFiles.writeString(outFile.toAbsolutePath(), JsonFiles.toPrettyString(n) + "\n");
                out.println("wrote " + outFile.toAbsolutePath());
            }
        }
    }
}
