package org.peft4j.core.tokenizer;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HfTokenizerTest {
    /** Ids of "The movie was wonderful and I loved it." under MiniLM's WordPiece vocabulary (REFERENCE §7). */
    static final int[] MOVIE_IDS = {101, 1996, 3185, 2001, 6919, 1998, 1045, 3866, 2009, 1012, 102};

    static HfTokenizer mini;

    @BeforeAll
    static void load() {
        mini = HfTokenizer.fromResource("/all-minilm-l6-v2-tokenizer.json");
    }

    @AfterAll
    static void close() {
        mini.close();
    }

    @Test
    void encodesTheReferenceSentence() {
        Encoding e = mini.encode("The movie was wonderful and I loved it.");
        assertArrayEquals(MOVIE_IDS, e.ids());
        assertArrayEquals(new int[]{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, e.attentionMask());
        assertArrayEquals(new int[11], e.typeIds());
    }

    @Test
    void bgeSharesTheVocabulary() {
        try (HfTokenizer bge = HfTokenizer.fromResource("/bge-small-en-v1.5-tokenizer.json")) {
            assertArrayEquals(MOVIE_IDS, bge.encode("The movie was wonderful and I loved it.").ids());
            assertEquals(30522, bge.vocabSize());
        }
    }

    @Test
    void specialIdsAndVocabulary() {
        assertEquals(101, mini.clsId());
        assertEquals(102, mini.sepId());
        assertEquals(0, mini.padId());
        assertEquals(100, mini.unkId());
        assertEquals(103, mini.maskId());
        assertEquals(30522, mini.vocabSize());
        assertEquals(3185, mini.tokenToId("movie"));
        assertEquals(-1, mini.tokenToId("no-such-token-xyz"));
    }

    @Test
    void decodes() {
        assertEquals("the movie was wonderful and i loved it.", mini.decode(MOVIE_IDS));
        assertEquals("[CLS] the movie was wonderful and i loved it. [SEP]", mini.decode(MOVIE_IDS, false));
        assertThrows(IllegalArgumentException.class, () -> mini.decode(new int[]{101, 40000}));
    }

    @Test
    void fileSettingsDoNotPadOrTruncate() {
        // MiniLM's tokenizer.json asks for fixed padding and truncation at 128; we must ignore both
        String text = "word ".repeat(300);
        assertEquals(302, mini.encode(text).length());
        assertEquals(3, mini.encode("hi").length());
    }

    @Test
    void truncationKeepsSpecialTokens() {
        String text = "word ".repeat(300);
        Encoding e = mini.encode(text, 16, true);
        assertEquals(16, e.length());
        assertEquals(101, e.ids()[0]);
        assertEquals(102, e.ids()[15]);
        for (int i = 1; i < 15; i++) {
            assertEquals(2773, e.ids()[i], "position " + i); // "word"
        }
        // short texts are untouched
        assertArrayEquals(MOVIE_IDS, mini.encode("The movie was wonderful and I loved it.", 11, true).ids());
        int[] cut = mini.encode("The movie was wonderful and I loved it.", 5, true).ids();
        assertArrayEquals(new int[]{101, 1996, 3185, 2001, 102}, cut);
        // without truncation the limit is ignored
        assertEquals(302, mini.encode(text, 16, false).length());
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, () -> mini.encode("a b c", 1, true));
        assertTrue(ex.getMessage().contains("maxLength 1"), ex.getMessage());
    }

    @Test
    void batchPadsToLongestOrMaxLength() {
        List<String> texts = List.of("The movie was wonderful and I loved it.", "Bad.", "word ".repeat(40));
        BatchEncoding b = mini.encodeBatch(texts, 20, true, Tokenizer.Padding.LONGEST);
        assertEquals(3, b.batchSize());
        assertEquals(20, b.length());
        assertEquals(11, b.realLength(0));
        assertEquals(4, b.realLength(1)); // [CLS] bad . [SEP]
        assertEquals(20, b.realLength(2));
        for (int i = 11; i < 20; i++) {
            assertEquals(0, b.ids()[0][i]);
            assertEquals(0, b.attentionMask()[0][i]);
        }
        for (int i = 0; i < 11; i++) {
            assertEquals(MOVIE_IDS[i], b.ids()[0][i]);
        }
        assertEquals(102, b.ids()[2][19]);

        BatchEncoding shortOnes = mini.encodeBatch(texts.subList(0, 2), 64, true, Tokenizer.Padding.LONGEST);
        assertEquals(11, shortOnes.length());
        BatchEncoding fixed = mini.encodeBatch(texts.subList(0, 2), 32, true, Tokenizer.Padding.MAX_LENGTH);
        assertEquals(32, fixed.length());
        assertArrayEquals(new long[]{2, 32}, fixed.inputIdsArray().shape());
        assertEquals(3185L, fixed.inputIdsArray().getLong(0, 2));
        assertEquals(0L, fixed.attentionMaskArray().getLong(1, 4));

        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
                () -> mini.encodeBatch(texts, 8, false, Tokenizer.Padding.MAX_LENGTH));
        assertTrue(ex.getMessage().contains("maxLength 8"), ex.getMessage());
    }

    @Test
    void loadsFromFileAndRejectsBadFiles(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("tokenizer.json");
        try (var in = HfTokenizerTest.class.getResourceAsStream("/all-minilm-l6-v2-tokenizer.json")) {
            Files.write(f, in.readAllBytes());
        }
        try (HfTokenizer t = HfTokenizer.fromFile(f)) {
            assertArrayEquals(MOVIE_IDS, t.encode("The movie was wonderful and I loved it.").ids());
        }
        Path bad = dir.resolve("bad.json");
        Files.writeString(bad, "{\"version\": \"1.0\"}");
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, () -> HfTokenizer.fromFile(bad));
        assertTrue(ex.getMessage().contains("bad.json"), ex.getMessage());
        Path broken = dir.resolve("broken.json");
        Files.writeString(broken, "{not json");
        ex = assertThrows(IllegalArgumentException.class, () -> HfTokenizer.fromFile(broken));
        assertTrue(ex.getMessage().contains("broken.json"), ex.getMessage());
        ex = assertThrows(IllegalArgumentException.class, () -> HfTokenizer.fromResource("/nope-tokenizer.json"));
        assertTrue(ex.getMessage().contains("/nope-tokenizer.json"), ex.getMessage());
    }
}
