package org.peft4j.core.model.decoder;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads Hugging Face {@code config.json} fields with the conventions every family shares:
 * unknown keys are ignored, a JSON {@code null} counts as absent (HF writes {@code "head_dim": null}),
 * and all missing required keys are reported together in one {@link IllegalArgumentException}
 * that names the file and the keys.
 */
public final class ConfigFields {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final ObjectNode node;
    private final String source;
    private final List<String> missing = new ArrayList<>();

    public ConfigFields(ObjectNode node, String source) {
        this.node = node;
        this.source = source;
    }

    /** Parses a config file; a file that is not a JSON object is an error naming it. */
    public static ConfigFields read(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("config file not found: " + file);
        }
        JsonNode n;
        try {
            n = MAPPER.readTree(file.toFile());
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot parse " + file + ": " + e.getMessage(), e);
        }
        if (n == null || !n.isObject()) {
            throw new IllegalArgumentException(file + " is not a JSON object");
        }
        return new ConfigFields((ObjectNode) n, file.toString());
    }

    public static ConfigFields of(JsonNode n, String source) {
        if (n == null || !n.isObject()) {
            throw new IllegalArgumentException(source + " is not a JSON object");
        }
        return new ConfigFields((ObjectNode) n, source);
    }

    public static ObjectMapper mapper() {
        return MAPPER;
    }

    public ObjectNode node() {
        return node;
    }

    public String source() {
        return source;
    }

    /** The first present (non-null) key among {@code keys} (aliases), or null. */
    private JsonNode find(String... keys) {
        for (String k : keys) {
            JsonNode v = node.get(k);
            if (v != null && !v.isNull()) {
                return v;
            }
        }
        return null;
    }

    public boolean has(String... keys) {
        return find(keys) != null;
    }

    /** A required integer; when absent, the first key is recorded as missing and 0 returned. */
    public int requiredInt(String... keys) {
        JsonNode v = find(keys);
        if (v == null) {
            missing.add(keys[0]);
            return 0;
        }
        return asInt(v, keys[0]);
    }

    public int optInt(int def, String... keys) {
        JsonNode v = find(keys);
        return v == null ? def : asInt(v, keys[0]);
    }

    /** An optional integer that stays null when absent. */
    public Integer optInteger(String... keys) {
        JsonNode v = find(keys);
        return v == null ? null : asInt(v, keys[0]);
    }

    public double optDouble(double def, String... keys) {
        JsonNode v = find(keys);
        if (v == null) {
            return def;
        }
        if (!v.isNumber()) {
            throw new IllegalArgumentException(source + ": '" + keys[0] + "' must be a number, found " + v);
        }
        return v.asDouble();
    }

    public boolean optBoolean(boolean def, String... keys) {
        JsonNode v = find(keys);
        if (v == null) {
            return def;
        }
        if (!v.isBoolean()) {
            throw new IllegalArgumentException(source + ": '" + keys[0] + "' must be true or false, found " + v);
        }
        return v.asBoolean();
    }

    public String optString(String def, String... keys) {
        JsonNode v = find(keys);
        if (v == null) {
            return def;
        }
        if (!v.isTextual()) {
            throw new IllegalArgumentException(source + ": '" + keys[0] + "' must be a string, found " + v);
        }
        return v.asText();
    }

    /** A token id field that may be an integer or a list of integers (HF allows both for eos). */
    public List<Integer> optIntList(String key) {
        JsonNode v = find(key);
        List<Integer> out = new ArrayList<>();
        if (v == null) {
            return out;
        }
        if (v.isArray()) {
            for (JsonNode e : v) {
                out.add(asInt(e, key));
            }
        } else {
            out.add(asInt(v, key));
        }
        return out;
    }

    /**
     * Writes {@code bos_token_id} (when set) and {@code eos_token_id} (an integer for one id, a
     * list for several, absent for none) into {@code n}, the forms {@link #optInteger} and
     * {@link #optIntList} read back.
     */
    public static void putTokenIds(ObjectNode n, Integer bosTokenId, List<Integer> eosTokenIds) {
        if (bosTokenId != null) {
            n.put("bos_token_id", bosTokenId);
        }
        if (eosTokenIds.size() == 1) {
            n.put("eos_token_id", eosTokenIds.get(0));
        } else if (!eosTokenIds.isEmpty()) {
            eosTokenIds.forEach(n.putArray("eos_token_id")::add);
        }
    }

    /** The raw node of a key (null when absent or JSON null). */
    public JsonNode raw(String key) {
        return find(key);
    }

    private int asInt(JsonNode v, String key) {
        if (!v.isIntegralNumber() && !(v.isNumber() && v.asDouble() == Math.rint(v.asDouble()))) {
            throw new IllegalArgumentException(source + ": '" + key + "' must be an integer, found " + v);
        }
        return v.asInt();
    }

    /** Throws if any required key was missing, naming all of them and the file. */
    public void checkRequired(String family) {
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException(source + ": missing required " + family + " config key(s) " + missing);
        }
    }

    /** Fails with the file named when {@code ok} is false. */
    public void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(source + ": " + message);
        }
    }
}
