package org.peft4j.core.data;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.dataformat.csv.CsvMapper;
import com.fasterxml.jackson.dataformat.csv.CsvParser;
import com.fasterxml.jackson.dataformat.csv.CsvSchema;

import java.io.BufferedInputStream;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.OutputStreamWriter;
import java.io.Reader;
import java.io.Writer;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

/**
 * Readers (and a writer) for labelled text data sets: JSON Lines and CSV, plain or gzip-compressed.
 *
 * <p><b>JSONL</b>: one JSON object per line, UTF-8; blank lines are skipped. The text and label
 * are read from the fields named in {@link Options} ({@code "text"} and {@code "label"} by
 * default); other fields are ignored.
 *
 * <p><b>CSV</b> (RFC 4180, parsed by Jackson's CSV module): UTF-8, the first row is the header,
 * fields may be quoted with {@code "}, a quoted field may contain the separator, line breaks
 * and doubled quotes {@code ""}. Blank lines are skipped; a UTF-8 byte-order mark is ignored.
 *
 * <p><b>Labels</b>: without label names ({@link Options#labels()} empty) a label must be a class
 * index: a JSON integer (or a float with an integral value such as {@code 1.0}) or a string of
 * decimal digits such as {@code "1"} (every CSV value is a string). With label names, a string
 * label must equal one of the names (surrounding whitespace ignored) and becomes its position in
 * the list, and a JSON number must be an index below the number of names.
 *
 * <p>Compression is detected from the gzip magic bytes, not the file name, so {@code .jsonl} and
 * {@code .jsonl.gz} (and {@code .csv.gz}) all work. Every content error is an
 * {@link IllegalArgumentException} whose message starts with the file and line number, e.g.
 * {@code data/train.jsonl, line 7: missing field 'text' (fields present: review, stars)}.
 */
public final class TextClassificationData {
    private static final ObjectMapper JSON = new ObjectMapper();
    // One line must hold exactly one object, and a repeated key is an error rather than
    // "the last one wins".
    private static final ObjectReader JSON_LINE = JSON.reader()
            .with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .with(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
    private static final CsvMapper CSV = CsvMapper.builder()
            .enable(CsvParser.Feature.SKIP_EMPTY_LINES)
            .build();
    private static final JsonFactory JSON_FACTORY = new JsonFactory();

    private TextClassificationData() {
    }

    /**
     * Which fields hold the text and the label, the label names, and the CSV separator.
     *
     * @param textField  JSON field / CSV column of the text
     * @param labelField JSON field / CSV column of the label
     * @param labels     label names in class-index order; empty means labels are class indices
     * @param separator  CSV column separator ({@code ','}; {@code '\t'} for TSV)
     */
    public record Options(String textField, String labelField, List<String> labels, char separator) {
        /** {@code text}, {@code label}, integer labels, comma-separated. */
        public static final Options DEFAULT = new Options("text", "label", List.of(), ',');

        public Options {
            if (textField == null || textField.isEmpty()) {
                throw new IllegalArgumentException("textField must be a non-empty name");
            }
            if (labelField == null || labelField.isEmpty()) {
                throw new IllegalArgumentException("labelField must be a non-empty name");
            }
            if (textField.equals(labelField)) {
                throw new IllegalArgumentException("textField and labelField are both '" + textField + "'");
            }
            labels = List.copyOf(labels);
            Set<String> seen = new HashSet<>();
            for (String name : labels) {
                if (name.strip().isEmpty() || !name.equals(name.strip())) {
                    throw new IllegalArgumentException("label name '" + name
                            + "' is empty or has surrounding whitespace");
                }
                if (!seen.add(name)) {
                    throw new IllegalArgumentException("label name '" + name + "' appears twice in " + labels);
                }
            }
            if (separator == '"' || separator == '\n' || separator == '\r') {
                throw new IllegalArgumentException("CSV separator cannot be " + describeChar(separator));
            }
        }

        public Options withTextField(String name) {
            return new Options(name, labelField, labels, separator);
        }

        public Options withLabelField(String name) {
            return new Options(textField, name, labels, separator);
        }

        /** Label names in class-index order: {@code withLabels("negative", "positive")}. */
        public Options withLabels(String... names) {
            return withLabels(Arrays.asList(names));
        }

        public Options withLabels(List<String> names) {
            return new Options(textField, labelField, names, separator);
        }

        public Options withSeparator(char sep) {
            return new Options(textField, labelField, labels, sep);
        }
    }

    // ------------------------------------------------------------------ dispatch by file name

    /** {@link #read(Path, Options)} with {@link Options#DEFAULT}. */
    public static List<TextExample> read(Path file) throws IOException {
        return read(file, Options.DEFAULT);
    }

    /**
     * Reads a file whose format follows from its name: {@code .jsonl} / {@code .ndjson} → JSONL,
     * {@code .csv} → CSV, {@code .tsv} → CSV with a tab separator; each optionally followed by
     * {@code .gz}.
     */
    public static List<TextExample> read(Path file, Options options) throws IOException {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".gz")) {
            name = name.substring(0, name.length() - 3);
        }
        if (name.endsWith(".jsonl") || name.endsWith(".ndjson")) {
            return readJsonl(file, options);
        }
        if (name.endsWith(".csv")) {
            return readCsv(file, options);
        }
        if (name.endsWith(".tsv")) {
            return readCsv(file, options.withSeparator('\t'));
        }
        throw new IllegalArgumentException(file + ": unknown data format; expected a name ending in "
                + ".jsonl, .ndjson, .csv or .tsv (optionally followed by .gz)");
    }

    // ------------------------------------------------------------------ JSONL

    /** {@link #readJsonl(Path, Options)} with {@link Options#DEFAULT}. */
    public static List<TextExample> readJsonl(Path file) throws IOException {
        return readJsonl(file, Options.DEFAULT);
    }

    public static List<TextExample> readJsonl(Path file, Options options) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return readJsonl(in, file.toString(), options);
        }
    }

    /**
     * Reads JSONL from a stream (plain or gzip); {@code source} names it in error messages. The
     * stream is read to the end but not closed.
     */
    public static List<TextExample> readJsonl(InputStream in, String source, Options options) throws IOException {
        Utf8Lines lines = new Utf8Lines(maybeGunzip(in, source));
        List<TextExample> out = new ArrayList<>();
        Map<String, Integer> labelIndex = labelIndex(options);
        long lineNo = 0;
        while (true) {
            String line;
            try {
                line = lines.next();
            } catch (CharacterCodingException e) {
                throw new IllegalArgumentException(where(source, lineNo + 1) + ": not valid UTF-8", e);
            } catch (IOException e) {
                throw new IOException(where(source, lineNo + 1) + ": " + e.getMessage(), e);
            }
            if (line == null) {
                break;
            }
            lineNo++;
            if (lineNo == 1 && !line.isEmpty() && line.charAt(0) == '\uFEFF') {
                line = line.substring(1);
            }
            if (line.isBlank()) {
                continue;
            }
            JsonNode node;
            try {
                node = JSON_LINE.readTree(line);
            } catch (JsonProcessingException e) {
                throw new IllegalArgumentException(where(source, lineNo) + ": malformed JSON at column "
                        + e.getLocation().getColumnNr() + ": " + e.getOriginalMessage(), e);
            }
            if (!node.isObject()) {
                throw new IllegalArgumentException(where(source, lineNo) + ": expected a JSON object, found "
                        + node.getNodeType().toString().toLowerCase(Locale.ROOT));
            }
            out.add(jsonExample(node, options, labelIndex, source, lineNo));
        }
        return out;
    }

    private static TextExample jsonExample(JsonNode obj, Options options, Map<String, Integer> labelIndex,
                                           String source, long lineNo) {
        JsonNode textNode = requireField(obj, options.textField(), source, lineNo);
        if (!textNode.isTextual()) {
            throw new IllegalArgumentException(where(source, lineNo) + ": field '" + options.textField()
                    + "' must be a string, found " + describe(textNode));
        }
        JsonNode labelNode = requireField(obj, options.labelField(), source, lineNo);
        int label;
        if (labelNode.isTextual()) {
            label = labelFromString(labelNode.textValue(), options, labelIndex, source, lineNo);
        } else if (labelNode.isNumber()) {
            label = labelFromNumber(labelNode, options, source, lineNo);
        } else {
            throw new IllegalArgumentException(where(source, lineNo) + ": field '" + options.labelField()
                    + "' must be an integer or a string, found " + describe(labelNode));
        }
        return new TextExample(textNode.textValue(), label);
    }

    private static JsonNode requireField(JsonNode obj, String field, String source, long lineNo) {
        JsonNode node = obj.get(field);
        if (node == null) {
            List<String> present = new ArrayList<>();
            obj.fieldNames().forEachRemaining(present::add);
            throw new IllegalArgumentException(where(source, lineNo) + ": missing field '" + field
                    + "' (fields present: " + String.join(", ", present) + ")");
        }
        if (node.isNull()) {
            throw new IllegalArgumentException(where(source, lineNo) + ": field '" + field + "' is null");
        }
        return node;
    }

    private static int labelFromNumber(JsonNode n, Options options, String source, long lineNo) {
        String field = options.labelField();
        double d = n.asDouble();
        boolean integral = n.isIntegralNumber() ? n.canConvertToInt() : (d == Math.rint(d) && Math.abs(d) < 1e9);
        if (!integral) {
            throw new IllegalArgumentException(where(source, lineNo) + ": label field '" + field
                    + "' is " + n.asText() + ", not a class index");
        }
        int label = n.isIntegralNumber() ? n.intValue() : (int) d;
        return checkIndex(label, options, source, lineNo);
    }

    // ------------------------------------------------------------------ CSV

    /** {@link #readCsv(Path, Options)} with {@link Options#DEFAULT}. */
    public static List<TextExample> readCsv(Path file) throws IOException {
        return readCsv(file, Options.DEFAULT);
    }

    public static List<TextExample> readCsv(Path file, Options options) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return readCsv(in, file.toString(), options);
        }
    }

    /**
     * Reads CSV with a header row from a stream (plain or gzip); {@code source} names it in error
     * messages. Line numbers in errors are the physical line where the record starts (a quoted
     * field may span lines). The stream is read to the end but not closed.
     */
    public static List<TextExample> readCsv(InputStream in, String source, Options options) throws IOException {
        Reader reader = utf8Reader(maybeGunzip(in, source));
        boolean empty;
        try {
            skipBom(reader);
            reader.mark(1);
            empty = reader.read() < 0;
            reader.reset();
        } catch (CharacterCodingException e) {
            // The first read decodes a whole buffer ahead of the parser.
            throw new IllegalArgumentException(source + ": not valid UTF-8 (at or after line 1)", e);
        }
        if (empty) {
            throw new IllegalArgumentException(source + ": empty CSV; expected a header row with columns '"
                    + options.textField() + "' and '" + options.labelField() + "'");
        }
        Map<String, Integer> labelIndex = labelIndex(options);
        CsvSchema schema = CsvSchema.emptySchema().withHeader().withColumnSeparator(options.separator());
        List<TextExample> out = new ArrayList<>();
        // Not closed by try-with-resources: closing the parser would close the caller's stream.
        CsvParser p = (CsvParser) CSV.getFactory().createParser(reader);
        p.setSchema(schema);
        Map<String, String> row = new HashMap<>();
        long rowLine = 1;
        boolean headerChecked = false;
        JsonToken t;
        while ((t = nextCsvToken(p, source, rowLine)) != null) {
            switch (t) {
                case START_OBJECT -> {
                    if (!headerChecked) {
                        checkHeader(p.getSchema(), options, source);
                        headerChecked = true;
                    }
                    row.clear();
                    // The parser has just passed the previous record (and any skipped blank
                    // lines), so its position is the line where this record starts.
                    rowLine = p.currentLocation().getLineNr();
                }
                case FIELD_NAME -> {
                    // The column name is read with its value (currentName()).
                }
                case VALUE_STRING -> row.put(p.currentName(), p.getText());
                case END_OBJECT -> out.add(csvExample(row, p.getSchema().size(), options, labelIndex, source, rowLine));
                default -> throw new IllegalStateException(where(source, rowLine) + ": unexpected CSV token " + t);
            }
        }
        if (!headerChecked) {
            // No data rows: still report a header without the needed columns.
            checkHeader(p.getSchema(), options, source);
        }
        return out;
    }

    private static JsonToken nextCsvToken(CsvParser p, String source, long rowLine) throws IOException {
        try {
            return p.nextToken();
        } catch (CharacterCodingException e) {
            // Decoding runs ahead of parsing, so the bad bytes are somewhere after this line.
            throw new IllegalArgumentException(source + ": not valid UTF-8 (at or after line " + Math.max(rowLine, 1) + ")", e);
        } catch (JsonProcessingException e) {
            long line = e.getLocation() != null && e.getLocation().getLineNr() > 0 ? e.getLocation().getLineNr() : rowLine;
            String start = rowLine > 0 && rowLine != line ? " (record starting at line " + rowLine + ")" : "";
            throw new IllegalArgumentException(where(source, line) + ": malformed CSV" + start + ": "
                    + e.getOriginalMessage(), e);
        }
    }

    private static void checkHeader(CsvSchema header, Options options, String source) {
        List<String> columns = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (Iterator<CsvSchema.Column> it = header.iterator(); it.hasNext(); ) {
            String name = it.next().getName();
            if (!seen.add(name)) {
                throw new IllegalArgumentException(where(source, 1) + ": header repeats column '" + name + "'");
            }
            columns.add(name);
        }
        for (String needed : List.of(options.textField(), options.labelField())) {
            if (!seen.contains(needed)) {
                throw new IllegalArgumentException(where(source, 1) + ": header has no column '" + needed
                        + "' (columns: " + String.join(", ", columns) + ")");
            }
        }
    }

    private static TextExample csvExample(Map<String, String> row, int columns, Options options,
                                          Map<String, Integer> labelIndex, String source, long line) {
        String text = row.get(options.textField());
        String label = row.get(options.labelField());
        for (String[] f : new String[][] {{options.textField(), text}, {options.labelField(), label}}) {
            if (f[1] == null) {
                throw new IllegalArgumentException(where(source, line) + ": missing field '" + f[0]
                        + "' (the row has " + row.size() + " of " + columns + " columns)");
            }
        }
        return new TextExample(text, labelFromString(label, options, labelIndex, source, line));
    }

    // ------------------------------------------------------------------ labels

    private static Map<String, Integer> labelIndex(Options options) {
        Map<String, Integer> index = new HashMap<>();
        for (int i = 0; i < options.labels().size(); i++) {
            index.put(options.labels().get(i), i);
        }
        return index;
    }

    private static int labelFromString(String raw, Options options, Map<String, Integer> labelIndex,
                                       String source, long line) {
        String value = raw.strip();
        String field = options.labelField();
        if (!options.labels().isEmpty()) {
            Integer idx = labelIndex.get(value);
            if (idx == null) {
                throw new IllegalArgumentException(where(source, line) + ": label '" + raw + "' in field '" + field
                        + "' is not one of the label names " + options.labels());
            }
            return idx;
        }
        if (value.isEmpty() || value.length() > 9 || !value.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new IllegalArgumentException(where(source, line) + ": label '" + raw + "' in field '" + field
                    + "' is not a class index; to map string labels give the label names "
                    + "(Options.withLabels(...))");
        }
        return Integer.parseInt(value);
    }

    private static int checkIndex(int label, Options options, String source, long line) {
        int n = options.labels().size();
        if (label < 0 || (n > 0 && label >= n)) {
            throw new IllegalArgumentException(where(source, line) + ": label " + label + " in field '"
                    + options.labelField() + "' is out of range" + (n > 0 ? " [0, " + n + ") for labels " + options.labels() : " (must be >= 0)"));
        }
        return label;
    }

    /**
     * Examples per class: {@code counts[c]} is the number with label {@code c}; the length is
     * {@code max(label) + 1} (0 for an empty list).
     */
    public static int[] labelCounts(Collection<TextExample> examples) {
        int max = -1;
        for (TextExample e : examples) {
            max = Math.max(max, e.label());
        }
        int[] counts = new int[max + 1];
        for (TextExample e : examples) {
            counts[e.label()]++;
        }
        return counts;
    }

    // ------------------------------------------------------------------ writing

    /**
     * Writes {@code {"text": ..., "label": n}} lines (UTF-8, {@code \n}-terminated), gzip-compressed
     * when the file name ends in {@code .gz}. Atomic: written to a temporary file in the same
     * folder, then renamed over {@code file}.
     */
    public static void writeJsonl(Path file, Collection<TextExample> examples) throws IOException {
        Path abs = file.toAbsolutePath();
        Path dir = abs.getParent();
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, "." + abs.getFileName(), ".tmp");
        try {
            try (OutputStream raw = Files.newOutputStream(tmp);
                 OutputStream os = abs.getFileName().toString().endsWith(".gz") ? new GZIPOutputStream(raw, 65536) : raw;
                 Writer w = new OutputStreamWriter(os, StandardCharsets.UTF_8)) {
                for (TextExample e : examples) {
                    // A fresh generator per line keeps each line a self-contained JSON text.
                    JsonGenerator g = JSON_FACTORY.createGenerator(w);
                    g.disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET);
                    g.writeStartObject();
                    g.writeStringField("text", e.text());
                    g.writeNumberField("label", e.label());
                    g.writeEndObject();
                    g.flush();
                    w.write('\n');
                }
            }
            Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    // ------------------------------------------------------------------ helpers

    static InputStream maybeGunzip(InputStream in, String source) throws IOException {
        BufferedInputStream b = new BufferedInputStream(in, 65536);
        b.mark(2);
        int b0 = b.read();
        int b1 = b.read();
        b.reset();
        if (b0 == 0x1f && b1 == 0x8b) {
            try {
                return new GZIPInputStream(b, 65536);
            } catch (IOException e) {
                throw new IOException(source + ": bad gzip header: " + e.getMessage(), e);
            }
        }
        return b;
    }

    /**
     * Splits UTF-8 bytes into lines at {@code \n} (dropping a {@code \r} before it) and decodes
     * each line on its own, so a decoding error is reported on the right line (a Reader decodes
     * ahead in large chunks).
     */
    static final class Utf8Lines {
        private final InputStream in;
        private final byte[] buf = new byte[1 << 16];
        private int pos;
        private int limit;
        private byte[] line = new byte[1024];
        private final CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder();

        Utf8Lines(InputStream in) {
            this.in = in;
        }

        /** The next line without its terminator, or null at the end. */
        String next() throws IOException {
            int len = 0;
            boolean any = false;
            while (true) {
                if (pos == limit) {
                    limit = in.read(buf, 0, buf.length);
                    pos = 0;
                    if (limit <= 0) {
                        limit = 0;
                        if (!any) {
                            return null;
                        }
                        break;
                    }
                }
                any = true;
                int start = pos;
                while (pos < limit && buf[pos] != '\n') {
                    pos++;
                }
                int n = pos - start;
                if (len + n > line.length) {
                    line = Arrays.copyOf(line, Math.max(line.length * 2, len + n));
                }
                System.arraycopy(buf, start, line, len, n);
                len += n;
                if (pos < limit) {
                    pos++; // consume '\n'
                    break;
                }
            }
            if (len > 0 && line[len - 1] == '\r') {
                len--;
            }
            return decoder.decode(ByteBuffer.wrap(line, 0, len)).toString();
        }
    }

    static BufferedReader utf8Reader(InputStream in) {
        // A fresh decoder REPORTs malformed input instead of silently substituting U+FFFD.
        return new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8.newDecoder()), 65536);
    }

    private static void skipBom(Reader reader) throws IOException {
        reader.mark(1);
        int c = reader.read();
        if (c != '\uFEFF') {
            reader.reset();
        }
    }

    private static String where(String source, long line) {
        return source + ", line " + line;
    }

    private static String describe(JsonNode node) {
        return node.getNodeType().toString().toLowerCase(Locale.ROOT) + " " + abbreviate(node.toString());
    }

    private static String abbreviate(String s) {
        return s.length() <= 40 ? s : s.substring(0, 37) + "...";
    }

    private static String describeChar(char c) {
        return switch (c) {
            case '\n' -> "'\\n'";
            case '\r' -> "'\\r'";
            default -> "'" + c + "'";
        };
    }
}
