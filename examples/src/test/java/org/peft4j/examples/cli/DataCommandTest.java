package org.peft4j.examples.cli;

import org.junit.jupiter.api.Test;
import org.peft4j.core.data.TextExample;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code data fetch imdb}: argument checks and the exported split (the download itself needs npm and the network). */
class DataCommandTest {
    @Test
    void wrongSubcommandIsAUserError() {
        CliTestSupport.Run r = CliTestSupport.cli("data", "fetch", "mnist");
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains("expected 'peft4j data fetch imdb'"), r.err());
    }

    @Test
    void exportSplitIsBalancedDisjointAndSeeded() {
        // 400 reviews, labels alternating, 20 texts occurring twice (the real set has 420 duplicates)
        List<TextExample> all = new ArrayList<>();
        for (int i = 0; i < 400; i++) {
            all.add(new TextExample("review " + (i < 20 ? i + 1000 : i), i % 2));
        }
        for (int i = 0; i < 20; i++) {
            all.add(new TextExample("review " + (i + 1000), i % 2));
        }
        List<List<TextExample>> s = DataCommand.split(all, 100, 42);
        List<TextExample> train = s.get(0);
        List<TextExample> test = s.get(1);
        assertEquals(100, test.size());
        assertEquals(50, test.stream().filter(e -> e.label() == 1).count(), "half of the test set is positive");
        Set<String> testTexts = new HashSet<>();
        test.forEach(e -> testTexts.add(e.text()));
        assertEquals(100, testTexts.size(), "no text twice in the test set");
        for (TextExample e : train) {
            assertFalse(testTexts.contains(e.text()), "train never holds a test text: " + e);
        }
        // every review is in exactly one of the files unless its text is a duplicate of a test text
        long dupOfTest = all.stream().filter(e -> testTexts.contains(e.text())).count() - 100;
        assertEquals(all.size() - 100 - dupOfTest, train.size());
        assertEquals(test, DataCommand.split(all, 100, 42).get(1), "same seed, same split");
        assertFalse(test.equals(DataCommand.split(all, 100, 43).get(1)), "another seed, another split");
    }
}
