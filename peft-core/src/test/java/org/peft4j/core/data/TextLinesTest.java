package org.peft4j.core.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TextLinesTest {
    @TempDir
    Path tmp;

    @Test
    void plainTextGivesEveryNonBlankLineAsItIs() throws IOException {
        Path f = tmp.resolve("lm.txt");
        Files.writeString(f, "  first line\n\n   \nsecond, with \"quotes\"\r\nthird — ünïcode\n", StandardCharsets.UTF_8);
        assertEquals(List.of("  first line", "second, with \"quotes\"", "third — ünïcode"), TextLines.read(f, "text"));
    }

    @Test
    void jsonlGivesTheTextFieldOfEachObject() throws IOException {
        Path f = tmp.resolve("lm.jsonl");
        Files.writeString(f, "{\"body\": \"a b\", \"id\": 1}\n\n{\"id\": 2, \"body\": \"line\\nbreak\"}\n", StandardCharsets.UTF_8);
        assertEquals(List.of("a b", "line\nbreak"), TextLines.read(f, "body"));
    }

    @Test
    void jsonlErrorsNameFileAndLine() throws IOException {
        Path f = tmp.resolve("bad.jsonl");
        Files.writeString(f, "{\"text\": \"ok\"}\n{\"text\": 3}\n", StandardCharsets.UTF_8);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TextLines.read(f, "text"));
        assertTrue(e.getMessage().contains(f + ", line 2") && e.getMessage().contains("'text'"), e.getMessage());

        Files.writeString(f, "{\"text\": \"ok\"}\n\nnot json\n", StandardCharsets.UTF_8);
        e = assertThrows(IllegalArgumentException.class, () -> TextLines.read(f, "text"));
        assertTrue(e.getMessage().contains(f + ", line 3: not JSON"), e.getMessage());
    }

    @Test
    void missingFileIsNamed() {
        Path f = tmp.resolve("nope.txt");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TextLines.read(f, "text"));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("does not exist"), e.getMessage());
    }
}
