package org.peft4j.examples.cli;

import org.peft4j.core.data.Imdb;
import org.peft4j.core.data.TextClassificationData;
import org.peft4j.core.data.TextExample;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Labelled text from the command line or a config: {@code imdb} (the bundled split;
 * {@code imdb:train}, {@code imdb:validation}, {@code imdb:test}) or a JSONL / CSV / TSV file with
 * named text and label fields.
 */
final class DataSources {
    static final String IMDB = "imdb";

    private DataSources() {
    }

    /** A labelled data set and the names of its classes. */
    record Labelled(String source, List<TextExample> examples, List<String> labels) {
    }

    /**
     * Reads {@code spec}; {@code defaultSplit} is the IMDB split used when {@code spec} is just
     * {@code imdb}. For files, {@code labels} (may be empty) names the classes in index order.
     */
    static Labelled load(String spec, String defaultSplit, String textField, String labelField, List<String> labels)
            throws IOException {
        if (spec.equals(IMDB) || spec.startsWith(IMDB + ":")) {
            String split = spec.equals(IMDB) ? defaultSplit : spec.substring(IMDB.length() + 1);
            Imdb.Split s = Imdb.bundledSplit();
            List<TextExample> ex = switch (split.toLowerCase(Locale.ROOT)) {
                case "train" -> s.train();
                case "validation", "val", "dev" -> s.validation();
                case "test" -> s.test();
                default -> throw new CliException("unknown IMDB split '" + split + "' (train, validation, test)");
            };
            return new Labelled("imdb:" + split, ex, Imdb.LABELS);
        }
        Path file = Path.of(spec);
        if (!Files.isRegularFile(file)) {
            throw new CliException("data '" + spec + "' is neither 'imdb' (the bundled split) nor an existing file");
        }
        TextClassificationData.Options opts = TextClassificationData.Options.DEFAULT
                .withTextField(textField == null ? "text" : textField)
                .withLabelField(labelField == null ? "label" : labelField)
                .withLabels(labels == null ? List.of() : labels);
        List<TextExample> ex = TextClassificationData.read(file, opts);
        if (ex.isEmpty()) {
            throw new CliException("data file " + file + " holds no examples");
        }
        List<String> names = labels == null || labels.isEmpty() ? Classification.defaultLabels(numClasses(ex)) : labels;
        return new Labelled(file.toString(), ex, names);
    }

    /** max label + 1, at least 2. */
    static int numClasses(List<TextExample> ex) {
        int max = 1;
        for (TextExample t : ex) {
            max = Math.max(max, t.label());
        }
        return max + 1;
    }

    /** {@code "a,b"} → {@code [a, b]}; null or blank → empty. */
    static List<String> splitList(String s) {
        if (s == null || s.isBlank()) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        Arrays.stream(s.split(",")).map(String::strip).filter(x -> !x.isEmpty()).forEach(out::add);
        return out;
    }
}
