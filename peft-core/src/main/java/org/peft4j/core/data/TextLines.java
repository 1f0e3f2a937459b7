package org.peft4j.core.data;

import com.fasterxml.jackson.databind.JsonNode;
import org.peft4j.core.io.JsonFiles;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Unlabelled text for language modelling, one text per line: a {@code .jsonl} file gives the
 * string field {@code textField} of each JSON object, any other file (plain {@code .txt}) each
 * line as it is. Blank lines are skipped in both.
 */
public final class TextLines {
    private TextLines() {
    }

    /**
     * The texts of {@code file}, in file order.
     *
     * @throws IllegalArgumentException if the file does not exist, or a JSONL line is not JSON or
     *                                  lacks a string {@code textField} (naming file and line)
     * @throws IOException              if the file cannot be read (or is not UTF-8)
     */
    public static List<String> read(Path file, String textField) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("data file " + file + " does not exist");
        }
        boolean jsonl = file.getFileName().toString().endsWith(".jsonl");
        if (jsonl && (textField == null || textField.isEmpty())) {
            throw new IllegalArgumentException("reading " + file + " as JSONL needs the name of its text field");
        }
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if (line.isBlank()) {
                continue;
            }
            if (!jsonl) {
                texts.add(line);
                continue;
            }
            JsonNode n;
            try {
                n = JsonFiles.mapper().readTree(line);
            } catch (IOException e) {
                throw new IllegalArgumentException(file + ", line " + (i + 1) + ": not JSON: " + firstLine(e.getMessage()), e);
            }
            if (!n.path(textField).isTextual()) {
                throw new IllegalArgumentException(file + ", line " + (i + 1) + ": missing text field '" + textField + "'");
            }
            texts.add(n.get(textField).asText());
        }
        return texts;
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
