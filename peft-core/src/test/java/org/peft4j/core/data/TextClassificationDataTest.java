package org.peft4j.core.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TextClassificationDataTest {
    private static final TextClassificationData.Options DEFAULT = TextClassificationData.Options.DEFAULT;

    @TempDir
    Path tmp;

    private Path write(String name, String content) throws IOException {
        Path f = tmp.resolve(name);
        Files.writeString(f, content, StandardCharsets.UTF_8);
        return f;
    }

    private Path writeGz(String name, String content) throws IOException {
        Path f = tmp.resolve(name);
        try (OutputStream os = new GZIPOutputStream(Files.newOutputStream(f))) {
            os.write(content.getBytes(StandardCharsets.UTF_8));
        }
        return f;
    }

    /** Runs the read, expects an IllegalArgumentException, checks the message holds every fragment. */
    private static IllegalArgumentException fails(IoCall call, String... fragments) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call::run);
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "message lacks '" + f + "': " + e.getMessage());
        }
        return e;
    }

    interface IoCall {
        void run() throws IOException;
    }

    // ------------------------------------------------------------------ JSONL

    @Test
    void jsonlBasicWithBlankLinesCrlfAndExtraFields() throws IOException {
        Path f = write("a.jsonl", "{\"text\": \"good film\", \"label\": 1}\r\n"
                + "\n"
                + "   \n"
                + "{\"label\": 0, \"text\": \"bad \\\"film\\\"\\nreally\", \"id\": 7, \"meta\": {\"x\": [1]}}\n"
                + "{\"text\": \"\u00e9t\u00e9 \u2028 \ud83c\udfac\", \"label\": 2}");
        assertEquals(List.of(new TextExample("good film", 1),
                        new TextExample("bad \"film\"\nreally", 0),
                        new TextExample("\u00e9t\u00e9 \u2028 \ud83c\udfac", 2)),
                TextClassificationData.readJsonl(f));
    }

    @Test
    void jsonlCustomFieldsAndStringLabels() throws IOException {
        Path f = write("b.jsonl", "{\"review\": \"loved it\", \"sentiment\": \"pos\"}\n"
                + "{\"review\": \"hated it\", \"sentiment\": \" neg \"}\n"
                + "{\"review\": \"index form\", \"sentiment\": 1}\n");
        TextClassificationData.Options o = DEFAULT.withTextField("review").withLabelField("sentiment").withLabels("neg", "pos");
        assertEquals(List.of(new TextExample("loved it", 1), new TextExample("hated it", 0), new TextExample("index form", 1)),
                TextClassificationData.readJsonl(f, o));
    }

    @Test
    void jsonlIntegerLabelForms() throws IOException {
        Path f = write("c.jsonl", "{\"text\": \"a\", \"label\": \"3\"}\n{\"text\": \"b\", \"label\": 1.0}\n{\"text\": \"c\", \"label\": 0}\n");
        assertEquals(List.of(new TextExample("a", 3), new TextExample("b", 1), new TextExample("c", 0)),
                TextClassificationData.readJsonl(f));
    }

    @Test
    void jsonlMissingFieldNamesFileLineAndField() throws IOException {
        Path f = write("missing.jsonl", "{\"text\": \"a\", \"label\": 0}\n\n{\"txt\": \"b\", \"label\": 1}\n");
        fails(() -> TextClassificationData.readJsonl(f), f.toString(), "line 3", "missing field 'text'", "txt, label");
        Path g = write("missing2.jsonl", "{\"text\": \"a\"}\n");
        fails(() -> TextClassificationData.readJsonl(g), g.toString(), "line 1", "missing field 'label'");
    }

    @Test
    void jsonlMalformedLinesNameFileAndLine() throws IOException {
        Path bad = write("bad.jsonl", "{\"text\": \"a\", \"label\": 0}\n{\"text\": \"b\", \"label\": 1\n");
        fails(() -> TextClassificationData.readJsonl(bad), bad.toString(), "line 2", "malformed JSON");
        Path two = write("two.jsonl", "{\"text\": \"a\", \"label\": 0} {\"text\": \"b\", \"label\": 1}\n");
        fails(() -> TextClassificationData.readJsonl(two), "line 1", "malformed JSON");
        Path arr = write("arr.jsonl", "[\"a\", 0]\n");
        fails(() -> TextClassificationData.readJsonl(arr), "line 1", "expected a JSON object, found array");
        Path dup = write("dup.jsonl", "{\"text\": \"a\", \"text\": \"b\", \"label\": 0}\n");
        fails(() -> TextClassificationData.readJsonl(dup), "line 1", "malformed JSON", "text");
    }

    @Test
    void jsonlBadValuesAreRejected() throws IOException {
        fails(() -> TextClassificationData.readJsonl(write("n.jsonl", "{\"text\": null, \"label\": 0}")),
                "line 1", "field 'text' is null");
        fails(() -> TextClassificationData.readJsonl(write("t.jsonl", "{\"text\": 5, \"label\": 0}")),
                "field 'text' must be a string, found number 5");
        fails(() -> TextClassificationData.readJsonl(write("f.jsonl", "{\"text\": \"x\", \"label\": 1.5}")),
                "label field 'label' is 1.5, not a class index");
        fails(() -> TextClassificationData.readJsonl(write("neg.jsonl", "{\"text\": \"x\", \"label\": -1}")),
                "label -1", "out of range");
        fails(() -> TextClassificationData.readJsonl(write("b.jsonl", "{\"text\": \"x\", \"label\": true}")),
                "must be an integer or a string, found boolean");
        fails(() -> TextClassificationData.readJsonl(write("s.jsonl", "{\"text\": \"x\", \"label\": 0}\n{\"text\": \"y\", \"label\": \"pos\"}")),
                "s.jsonl, line 2", "label 'pos'", "not a class index", "withLabels");
        TextClassificationData.Options two = DEFAULT.withLabels("neg", "pos");
        fails(() -> TextClassificationData.readJsonl(write("u.jsonl", "{\"text\": \"x\", \"label\": \"neutral\"}"), two),
                "label 'neutral'", "not one of the label names [neg, pos]");
        fails(() -> TextClassificationData.readJsonl(write("r.jsonl", "{\"text\": \"x\", \"label\": 2}"), two),
                "label 2", "out of range [0, 2)");
    }

    @Test
    void jsonlGzipAndBomAndUtf8Errors() throws IOException {
        String content = "\uFEFF{\"text\": \"caf\u00e9\", \"label\": 1}\n{\"text\": \"b\", \"label\": 0}\n";
        List<TextExample> want = List.of(new TextExample("caf\u00e9", 1), new TextExample("b", 0));
        assertEquals(want, TextClassificationData.readJsonl(write("p.jsonl", content)));
        assertEquals(want, TextClassificationData.readJsonl(writeGz("p.jsonl.gz", content)));
        // Compression is recognized by content, not by name.
        assertEquals(want, TextClassificationData.readJsonl(writeGz("misnamed.jsonl", content)));
        assertEquals(want, TextClassificationData.read(writeGz("p2.jsonl.gz", content)));

        Path latin1 = tmp.resolve("latin1.jsonl");
        Files.write(latin1, "{\"text\": \"ok\", \"label\": 0}\n{\"text\": \"caf\u00e9\", \"label\": 1}\n"
                .getBytes(StandardCharsets.ISO_8859_1));
        fails(() -> TextClassificationData.readJsonl(latin1), latin1.toString(), "line 2", "not valid UTF-8");
    }

    @Test
    void streamSourceNameAppearsInErrors() {
        byte[] data = "{\"label\": 0}\n".getBytes(StandardCharsets.UTF_8);
        fails(() -> TextClassificationData.readJsonl(new ByteArrayInputStream(data), "upload#3", DEFAULT),
                "upload#3, line 1", "missing field 'text'");
    }

    // ------------------------------------------------------------------ CSV

    @Test
    void csvQuotedFieldWithCommaNewlineAndQuotes() throws IOException {
        Path f = write("q.csv", "text,label\n"
                + "\"Great, truly great.\nSecond line with \"\"quotes\"\".\",1\n"
                + "plain text,0\n"
                + "\"\",1\n");
        assertEquals(List.of(new TextExample("Great, truly great.\nSecond line with \"quotes\".", 1),
                        new TextExample("plain text", 0),
                        new TextExample("", 1)),
                TextClassificationData.readCsv(f));
    }

    @Test
    void csvColumnOrderStringLabelsCrlfBomBlankLines() throws IOException {
        Path f = write("s.csv", "\uFEFFid,sentiment,review\r\n"
                + "1,positive,\"Fun, fast\r\nand loud\"\r\n"
                + "\r\n"
                + "2,negative,Dull\r\n");
        TextClassificationData.Options o = DEFAULT.withTextField("review").withLabelField("sentiment")
                .withLabels(List.of("negative", "positive"));
        assertEquals(List.of(new TextExample("Fun, fast\r\nand loud", 1), new TextExample("Dull", 0)),
                TextClassificationData.readCsv(f, o));
    }

    @Test
    void csvMissingFieldNamesRecordStartLine() throws IOException {
        // Record 1 spans lines 2-3, so the short record is on line 4.
        Path f = write("short.csv", "text,label\n\"two\nlines\",1\nno label here\nok,0\n");
        fails(() -> TextClassificationData.readCsv(f), f.toString(), "line 4", "missing field 'label'", "1 of 2 columns");
    }

    @Test
    void csvHeaderProblems() throws IOException {
        Path noCol = write("nocol.csv", "review,label\nx,1\n");
        fails(() -> TextClassificationData.readCsv(noCol), noCol.toString(), "line 1", "no column 'text'", "columns: review, label");
        Path dup = write("dup.csv", "text,label,text\nx,1,y\n");
        fails(() -> TextClassificationData.readCsv(dup), "line 1", "repeats column 'text'");
        Path headerOnly = write("h.csv", "text,label\n");
        assertEquals(List.of(), TextClassificationData.readCsv(headerOnly));
        Path headerOnlyBad = write("hb.csv", "words,label\n");
        fails(() -> TextClassificationData.readCsv(headerOnlyBad), "no column 'text'");
        Path empty = write("e.csv", "");
        fails(() -> TextClassificationData.readCsv(empty), empty.toString(), "empty CSV");
    }

    @Test
    void csvMalformedRowsNameLine() throws IOException {
        Path extra = write("extra.csv", "text,label\nfine,0\ntoo,many,columns\n");
        fails(() -> TextClassificationData.readCsv(extra), extra.toString(), "line 3", "malformed CSV");
        Path open = write("open.csv", "text,label\nfine,0\n\"never closed,1\nmore\n");
        fails(() -> TextClassificationData.readCsv(open), open.toString(), "malformed CSV", "record starting at line 3");
        Path badLabel = write("bl.csv", "text,label\nfine,0\nx,pos\n");
        fails(() -> TextClassificationData.readCsv(badLabel), "bl.csv, line 3", "label 'pos'", "not a class index");
        Path latin1 = tmp.resolve("latin1.csv");
        Files.write(latin1, "text,label\ncaf\u00e9,1\n".getBytes(StandardCharsets.ISO_8859_1));
        fails(() -> TextClassificationData.readCsv(latin1), latin1.toString(), "not valid UTF-8");
        Path blank = write("blank.csv", "\n\n");
        fails(() -> TextClassificationData.readCsv(blank), blank.toString(), "line 1", "malformed CSV");
    }

    @Test
    void tsvAndGzipCsvThroughRead() throws IOException {
        Path tsv = write("d.tsv", "label\ttext\n1\ta, b, c\n0\t\"tab\there\"\n");
        assertEquals(List.of(new TextExample("a, b, c", 1), new TextExample("tab\there", 0)),
                TextClassificationData.read(tsv));
        Path gz = writeGz("d.csv.gz", "text,label\n\"x, y\",1\n");
        assertEquals(List.of(new TextExample("x, y", 1)), TextClassificationData.read(gz));
        Path unknown = write("d.parquet", "");
        fails(() -> TextClassificationData.read(unknown), "d.parquet", "unknown data format");
    }

    // ------------------------------------------------------------------ writing, counts, options

    @Test
    void writeJsonlRoundTripsPlainAndGzip() throws IOException {
        List<TextExample> data = List.of(new TextExample("quote \" backslash \\ newline\n tab\t", 1),
                new TextExample("\u2028 line separator, \u00e9, \ud83c\udfac", 0), new TextExample("", 4));
        Path plain = tmp.resolve("out/plain.jsonl");
        TextClassificationData.writeJsonl(plain, data);
        assertEquals(data, TextClassificationData.readJsonl(plain));
        assertEquals("{\"text\":\"\",\"label\":4}", Files.readAllLines(plain, StandardCharsets.UTF_8).get(2));

        Path gz = tmp.resolve("out/data.jsonl.gz");
        TextClassificationData.writeJsonl(gz, data);
        try (GZIPInputStream in = new GZIPInputStream(Files.newInputStream(gz))) {
            assertArrayEquals(Files.readAllBytes(plain), in.readAllBytes());
        }
        assertEquals(data, TextClassificationData.read(gz));
        // Overwrite in place; no temporary files remain.
        TextClassificationData.writeJsonl(plain, data.subList(0, 1));
        assertEquals(data.subList(0, 1), TextClassificationData.readJsonl(plain));
        try (Stream<Path> s = Files.list(tmp.resolve("out"))) {
            assertEquals(List.of("data.jsonl.gz", "plain.jsonl"), s.map(p -> p.getFileName().toString()).sorted().toList());
        }
    }

    @Test
    void labelCounts() {
        assertArrayEquals(new int[] {1, 0, 2}, TextClassificationData.labelCounts(
                List.of(new TextExample("a", 2), new TextExample("b", 0), new TextExample("c", 2))));
        assertArrayEquals(new int[0], TextClassificationData.labelCounts(List.of()));
    }

    @Test
    void optionsValidation() {
        assertThrows(IllegalArgumentException.class, () -> DEFAULT.withTextField(""));
        assertThrows(IllegalArgumentException.class, () -> DEFAULT.withLabelField("text"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DEFAULT.withLabels("a", "b", "a"));
        assertTrue(e.getMessage().contains("'a' appears twice"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> DEFAULT.withLabels(" a"));
        assertThrows(IllegalArgumentException.class, () -> DEFAULT.withSeparator('"'));
        assertThrows(IllegalArgumentException.class, () -> new TextExample("x", -1));
        assertThrows(NullPointerException.class, () -> new TextExample(null, 0));
    }
}
