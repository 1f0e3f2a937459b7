package org.peft4j.core.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;

/**
 * JSON files of checkpoint and adapter folders ({@code config.json},
 * {@code model.safetensors.index.json}, {@code adapter_config.json}).
 *
 * <p>Written the way the Python libraries write them ({@code json.dumps(obj, indent=2,
 * sort_keys=True) + "\n"} in transformers and PEFT): keys sorted, two-space indentation, one array
 * element per line, {@code "key": value}, empty containers as {@code {}} / {@code []}, non-ASCII
 * characters escaped. Only number formatting can differ (Jackson writes {@code 1.0E-12} where
 * Python writes {@code 1e-12}); both are the same JSON value. Writes are atomic.
 */
public final class JsonFiles {
    private static final ObjectMapper MAPPER = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private static final ObjectWriter PRETTY;

    static {
        DefaultIndenter indent = new DefaultIndenter("  ", "\n");
        Separators seps = Separators.createDefaultInstance()
                .withObjectFieldValueSpacing(Separators.Spacing.AFTER)
                .withObjectEntrySpacing(Separators.Spacing.NONE)
                .withArrayValueSpacing(Separators.Spacing.NONE)
                .withObjectEmptySeparator("")
                .withArrayEmptySeparator("");
        DefaultPrettyPrinter pp = new DefaultPrettyPrinter(seps)
                .withObjectIndenter(indent)
                .withArrayIndenter(indent);
        PRETTY = MAPPER.writer(pp).with(JsonWriteFeature.ESCAPE_NON_ASCII);
    }

    private JsonFiles() {
    }

    /** The shared, configured mapper (thread-safe; do not reconfigure it). */
    public static ObjectMapper mapper() {
        return MAPPER;
    }

    /**
     * Reads a JSON file.
     *
     * @throws CheckpointException if the file does not exist or is not valid JSON (names the file)
     */
    public static JsonNode read(Path file) throws IOException {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new CheckpointException(file + ": file not found", e);
        }
        try {
            JsonNode n = MAPPER.readTree(bytes);
            if (n == null || n.isMissingNode()) {
                throw new CheckpointException(file + ": empty file, expected JSON");
            }
            return n;
        } catch (JsonProcessingException e) {
            throw new CheckpointException(file + ": invalid JSON: " + e.getOriginalMessage()
                    + (e.getLocation() != null ? " (line " + e.getLocation().getLineNr() + ", column "
                    + e.getLocation().getColumnNr() + ")" : ""), e);
        }
    }

    /** Reads a JSON file that must hold an object. */
    public static ObjectNode readObject(Path file) throws IOException {
        JsonNode n = read(file);
        if (!n.isObject()) {
            throw new CheckpointException(file + ": expected a JSON object, found " + n.getNodeType());
        }
        return (ObjectNode) n;
    }

    /** Reads a JSON file into {@code type} (a record or bean mapped with Jackson annotations). */
    public static <T> T read(Path file, Class<T> type) throws IOException {
        JsonNode n = read(file);
        try {
            return MAPPER.treeToValue(n, type);
        } catch (JsonProcessingException e) {
            throw new CheckpointException(file + ": cannot map JSON to " + type.getSimpleName() + ": "
                    + e.getOriginalMessage(), e);
        }
    }

    /**
     * {@code value} (a JsonNode, Map, record or bean) as Python-style pretty JSON with sorted
     * keys and a final newline. A NaN or infinite number is written as {@code null}: JSON has no
     * such numbers (Jackson would write the string {@code "NaN"}).
     */
    public static String toPrettyString(Object value) {
        JsonNode tree = value instanceof JsonNode n ? n : MAPPER.valueToTree(value);
        try {
            return PRETTY.writeValueAsString(sorted(tree)) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("cannot write JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** Writes {@code value} as {@link #toPrettyString} to {@code file}, atomically. */
    public static void write(Path file, Object value) throws IOException {
        AtomicFiles.writeString(file, toPrettyString(value));
    }

    /** A deep copy of {@code n} whose objects have their keys in sorted order, non-finite numbers as null. */
    static JsonNode sorted(JsonNode n) {
        if (n.isObject()) {
            List<String> names = new ArrayList<>();
            for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) {
                names.add(it.next());
            }
            Collections.sort(names);
            ObjectNode out = MAPPER.createObjectNode();
            for (String k : names) {
                out.set(k, sorted(n.get(k)));
            }
            return out;
        }
        if (n.isArray()) {
            ArrayNode out = MAPPER.createArrayNode();
            for (JsonNode e : n) {
                out.add(sorted(e));
            }
            return out;
        }
        if (n.isNumber() && (n.isDouble() || n.isFloat()) && !Double.isFinite(n.doubleValue())) {
            return com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.nullNode();
        }
        return n;
    }
}
