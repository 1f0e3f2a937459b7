package org.peft4j.core.peft;

import com.fasterxml.jackson.annotation.JsonAnySetter;
import com.fasterxml.jackson.annotation.JsonAutoDetect;
import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.type.LogicalType;
import com.fasterxml.jackson.databind.jsontype.NamedType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * The configuration of one adapter, as stored in {@code adapter_config.json}. Subclasses (one per
 * PEFT method) add their own keys; the JSON is polymorphic on {@code peft_type}, whose values map
 * to the {@link PeftMethod}s installed on the class path.
 *
 * <p>Common keys: {@code peft_type}, {@code task_type}, {@code base_model_name_or_path},
 * {@code revision}, {@code inference_mode}, {@code peft_version}. Keys a reader does not know are
 * ignored with one warning that lists them (as PEFT does); keys of PEFT features that peft4j does
 * not implement are accepted silently while they hold their inert default and rejected otherwise
 * (see {@link #tolerateKnownKey}).
 *
 * <p>{@link #seed()} is not part of the file: it seeds this adapter's random initialization and
 * dropout so a run is reproducible.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, include = JsonTypeInfo.As.EXISTING_PROPERTY, property = "peft_type")
@JsonAutoDetect(fieldVisibility = JsonAutoDetect.Visibility.NONE, getterVisibility = JsonAutoDetect.Visibility.NONE,
        isGetterVisibility = JsonAutoDetect.Visibility.NONE, setterVisibility = JsonAutoDetect.Visibility.NONE)
@JsonInclude(JsonInclude.Include.ALWAYS)
public abstract class PeftConfig {
    private static final Logger LOG = LoggerFactory.getLogger(PeftConfig.class);

    /** Keys every PEFT config may carry that peft4j reads but does not use. */
    private static final java.util.Set<String> COMMON_IGNORED = java.util.Set.of("auto_mapping");

    @JsonProperty("task_type")
    protected TaskType taskType;
    @JsonProperty("base_model_name_or_path")
    protected String baseModelNameOrPath;
    @JsonProperty("revision")
    protected String revision;
    @JsonProperty("inference_mode")
    protected boolean inferenceMode;
    @JsonProperty("peft_version")
    protected String peftVersion;
    @JsonProperty("modules_to_save")
    protected java.util.List<String> modulesToSave;

    @JsonIgnore
    protected long seed;

    /** Keys found in a file that this class does not map, in file order. */
    @JsonIgnore
    private final Map<String, Object> unknownKeys = new LinkedHashMap<>();

    /** PEFT's name of the method, e.g. {@code "LORA"}. */
    @JsonProperty("peft_type")
    public abstract String peftType();

    /**
     * Checks the values and throws {@link IllegalArgumentException} naming the offending key.
     * Called by {@link Peft#apply} and after reading a file.
     */
    public void validate() {
    }

    /**
     * Decides about a key this class does not map: return true when it is a known PEFT key whose
     * value changes nothing in peft4j (it is then dropped silently), throw when it is a known key
     * whose value asks for a feature peft4j does not implement, return false otherwise (it is then
     * reported as unknown).
     */
    protected boolean tolerateKnownKey(String key, Object value) {
        return COMMON_IGNORED.contains(key);
    }

    @JsonAnySetter
    private void unknownKey(String key, Object value) {
        unknownKeys.put(key, value);
    }

    public TaskType taskType() {
        return taskType;
    }

    public void setTaskType(TaskType taskType) {
        this.taskType = taskType;
    }

    public String baseModelNameOrPath() {
        return baseModelNameOrPath;
    }

    public void setBaseModelNameOrPath(String name) {
        this.baseModelNameOrPath = name;
    }

    public String revision() {
        return revision;
    }

    public void setRevision(String revision) {
        this.revision = revision;
    }

    /** True when the adapter is used for inference only: its parameters stay frozen. */
    public boolean inferenceMode() {
        return inferenceMode;
    }

    public void setInferenceMode(boolean inferenceMode) {
        this.inferenceMode = inferenceMode;
    }

    /** The version string found in (or written to) the file; null when absent. */
    public String peftVersion() {
        return peftVersion;
    }

    public void setPeftVersion(String peftVersion) {
        this.peftVersion = peftVersion;
    }

    /**
     * Modules (by name suffix, as PEFT matches them) that are copied and trained in full next to
     * the adapter, e.g. a fresh classifier head; null when none.
     */
    public java.util.List<String> modulesToSave() {
        return modulesToSave;
    }

    public void setModulesToSave(java.util.List<String> modulesToSave) {
        this.modulesToSave = modulesToSave == null ? null : java.util.List.copyOf(modulesToSave);
    }

    /** Seed for this adapter's random initialization and dropout masks (not saved). */
    public long seed() {
        return seed;
    }

    public void setSeed(long seed) {
        this.seed = seed;
    }

    /** Keys of the file this config was read from that no reader knew (already warned about). */
    public Map<String, Object> unknownKeys() {
        return java.util.Collections.unmodifiableMap(unknownKeys);
    }

    // ---- JSON ------------------------------------------------------------------------------

    /** The keys and values as written to {@code adapter_config.json}. */
    @SuppressWarnings("unchecked")
    public Map<String, Object> toMap() {
        return new TreeMap<>(Mappers.MAPPER.convertValue(this, LinkedHashMap.class));
    }

    /** {@code adapter_config.json} text, formatted as PEFT writes it (indent 2, sorted keys). */
    public String toJson() {
        return PythonJson.write(toMap());
    }

    /** An independent copy (same values and seed). */
    public PeftConfig copy() {
        PeftConfig c = Mappers.MAPPER.convertValue(toMap(), getClass());
        c.seed = seed;
        c.unknownKeys.putAll(unknownKeys);
        return c;
    }

    /** Reads a config of the class for its {@code peft_type}; {@code source} names the input in errors. */
    public static PeftConfig fromJson(String json, String source) {
        JsonNode tree;
        try {
            tree = Mappers.MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("cannot parse " + source + " as JSON: " + e.getOriginalMessage(), e);
        }
        if (tree == null || !tree.isObject()) {
            throw new IllegalArgumentException(source + " must hold a JSON object");
        }
        JsonNode type = tree.get("peft_type");
        if (type == null || !type.isTextual()) {
            throw new IllegalArgumentException(source + " has no string 'peft_type' (installed types: "
                    + PeftMethods.installedTypes() + ")");
        }
        PeftMethod method = PeftMethods.get(type.asText(), source);
        PeftConfig config;
        try {
            PeftConfig own = method.configFromJson(tree, source);
            config = own != null ? own : Mappers.MAPPER.treeToValue(tree, method.configClass());
        } catch (JsonProcessingException | IllegalArgumentException e) {
            String msg = e instanceof JsonProcessingException jpe ? jpe.getOriginalMessage() : e.getMessage();
            throw new IllegalArgumentException("invalid " + type.asText() + " config in " + source + ": " + msg, e);
        }
        config.reportUnknownKeys(source);
        try {
            config.validate();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("invalid " + type.asText() + " config in " + source + ": " + e.getMessage(), e);
        }
        return config;
    }

    /**
     * Reads a config a user wrote (the {@code peft} section of a {@code peft4j train} recipe),
     * strictly: a key the method's config does not know (and PEFT does not define) is an error,
     * and so is a value of the wrong type — a word where a number belongs, a number where a string
     * belongs, a fraction where an integer belongs, {@code null} or {@code ""} for a number or a
     * boolean, a number for an enum. Each error names the key by its full dotted path,
     * {@code path} + {@code .key} (e.g. {@code peft.r}, {@code peft.target_modules[1]}), and the
     * value found. A numeric string ({@code "0.1"}, YAML 1.1's {@code 1e-3}) is read as the number.
     * ({@link #fromJson} stays as lenient as PEFT for {@code adapter_config.json} files: unknown
     * keys are a warning.)
     *
     * @param source names the file in messages
     * @param path   the dotted path of {@code tree} in that file ({@code "peft"})
     */
    public static PeftConfig fromJsonStrict(JsonNode tree, String source, String path) {
        String where = source + ": " + path;
        if (tree == null || !tree.isObject()) {
            throw new IllegalArgumentException(where + " must be a mapping with the method's PEFT keys (peft_type: LORA, ...)");
        }
        JsonNode type = tree.get("peft_type");
        if (type == null || !type.isTextual()) {
            throw new IllegalArgumentException(where + ".peft_type must be a string naming the method (installed: "
                    + PeftMethods.installedTypes() + "), got " + (type == null ? "nothing" : Mappers.describe(type)));
        }
        PeftMethod method = PeftMethods.get(type.asText(), source + ": " + path + ".peft_type");
        // a method with its own reader (AdapterHub's keys for BOTTLENECK) reads strictly itself: unknown keys are errors there
        PeftConfig own;
        try {
            own = method.configFromJson(tree, where);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("invalid " + type.asText() + " config in " + where + ": " + e.getMessage(), e);
        }
        if (own != null) {
            try {
                own.validate();
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("invalid " + type.asText() + " config in " + where + ": " + e.getMessage(), e);
            }
            return own;
        }
        PeftConfig config;
        try {
            config = Mappers.STRICT.treeToValue(tree, method.configClass());
        } catch (com.fasterxml.jackson.databind.JsonMappingException e) {
            throw new IllegalArgumentException(Mappers.strictMessage(e, tree, source, path), e);
        } catch (JsonProcessingException | IllegalArgumentException e) {
            String msg = e instanceof JsonProcessingException jpe ? jpe.getOriginalMessage() : e.getMessage();
            throw new IllegalArgumentException("invalid " + type.asText() + " config in " + where + ": " + msg, e);
        }
        java.util.Set<String> known = new java.util.TreeSet<>(config.toMap().keySet());
        for (Map.Entry<String, Object> e : config.unknownKeys.entrySet()) {
            if (!config.tolerateKnownKey(e.getKey(), e.getValue())) {
                throw new IllegalArgumentException(source + ": unknown key " + path + "." + e.getKey() + " for "
                        + type.asText() + " (known: " + String.join(", ", known) + ")");
            }
        }
        try {
            config.validate();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("invalid " + type.asText() + " config in " + where + ": " + e.getMessage(), e);
        }
        return config;
    }

    /**
     * The config of the adapter folder {@code dir} in whichever layout it is ({@link AdapterLayouts}):
     * PEFT's {@code adapter_config.json}, or AdapterHub's (for a fusion folder, the fusion's).
     */
    public static PeftConfig load(Path dir) {
        java.util.List<AdapterLayout.StoredAdapter> l = AdapterLayouts.forFolder(dir).list(dir, PeftModel.DEFAULT_ADAPTER);
        return l.get(l.size() - 1).config();
    }

    /** Reads PEFT's {@code dir/adapter_config.json}. */
    static PeftConfig readPeftJson(Path dir) {
        Path file = dir.resolve(PeftModel.CONFIG_NAME);
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("no " + PeftModel.CONFIG_NAME + " in " + dir);
        }
        try {
            return fromJson(Files.readString(file, StandardCharsets.UTF_8), file.toString());
        } catch (IOException e) {
            throw new PeftException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private void reportUnknownKeys(String source) {
        Map<String, Object> unknown = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : unknownKeys.entrySet()) {
            if (!tolerateKnownKey(e.getKey(), e.getValue())) {
                unknown.put(e.getKey(), e.getValue());
            }
        }
        if (!unknown.isEmpty()) {
            LOG.warn("{}: ignoring unknown {} config keys {}", source, peftType(), unknown.keySet());
        }
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + toMap();
    }

    /** The shared Jackson mapper, with every installed config class registered under its peft_type. */
    static final class Mappers {
        static final ObjectMapper MAPPER = create();
        /** {@link #MAPPER} without Jackson's silent coercions ({@link #fromJsonStrict}). */
        static final ObjectMapper STRICT = strict();

        private static ObjectMapper strict() {
            ObjectMapper m = create();
            m.configure(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES, true);
            m.configure(DeserializationFeature.ACCEPT_FLOAT_AS_INT, false);
            m.configure(DeserializationFeature.FAIL_ON_NUMBERS_FOR_ENUMS, true);
            m.coercionConfigDefaults().setCoercion(CoercionInputShape.EmptyString, CoercionAction.Fail);
            m.coercionConfigFor(LogicalType.Boolean).setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Float, CoercionAction.Fail);
            m.coercionConfigFor(LogicalType.Textual).setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail);
            m.coercionConfigFor(LogicalType.Integer).setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail);
            m.coercionConfigFor(LogicalType.Float).setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail);
            return m;
        }

        /** "FILE: peft.r must be an integer, got "four" (string)" for a mapping error at that path. */
        static String strictMessage(com.fasterxml.jackson.databind.JsonMappingException e, JsonNode tree, String source,
                                    String path) {
            StringBuilder key = new StringBuilder(path);
            JsonNode at = tree;
            for (com.fasterxml.jackson.databind.JsonMappingException.Reference r : e.getPath()) {
                if (r.getFieldName() != null) {
                    key.append('.').append(r.getFieldName());
                    at = at == null ? null : at.get(r.getFieldName());
                } else if (r.getIndex() >= 0) {
                    key.append('[').append(r.getIndex()).append(']');
                    at = at == null ? null : at.get(r.getIndex());
                }
            }
            Class<?> target = e instanceof com.fasterxml.jackson.databind.exc.MismatchedInputException mie
                    ? mie.getTargetType() : null;
            if (target != null && at != null) {
                return source + ": " + key + " must be " + expected(target) + ", got " + describe(at);
            }
            String cause = e.getCause() != null && e.getCause().getMessage() != null ? e.getCause().getMessage()
                    : e.getOriginalMessage();
            return source + ": " + key + ": " + cause;
        }

        private static String expected(Class<?> t) {
            if (t == int.class || t == long.class || t == short.class || t == Integer.class || t == Long.class
                    || t == Short.class || t == java.math.BigInteger.class) {
                return "an integer";
            }
            if (t == float.class || t == double.class || t == Float.class || t == Double.class
                    || t == java.math.BigDecimal.class || t == Number.class) {
                return "a number";
            }
            if (t == boolean.class || t == Boolean.class) {
                return "true or false";
            }
            if (t == String.class) {
                return "a string";
            }
            if (t.isEnum()) {
                return "one of " + java.util.Arrays.toString(t.getEnumConstants());
            }
            if (t.isArray() || java.util.Collection.class.isAssignableFrom(t)) {
                return "a list";
            }
            if (Map.class.isAssignableFrom(t)) {
                return "a mapping";
            }
            return "a " + t.getSimpleName();
        }

        static String describe(JsonNode v) {
            String t = v.toString();
            return (t.length() > 60 ? t.substring(0, 60) + "..." : t) + " ("
                    + v.getNodeType().name().toLowerCase(java.util.Locale.ROOT) + ")";
        }

        private static ObjectMapper create() {
            ObjectMapper m = new ObjectMapper();
            m.configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);
            m.configure(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES, false);
            for (PeftMethod method : PeftMethods.all()) {
                m.registerSubtypes(new NamedType(method.configClass(), method.peftType()));
            }
            return m;
        }

        private Mappers() {
        }
    }
}
