package org.peft4j.core.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.nn.Module;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;
import java.util.TreeMap;

/**
 * The registry of {@link ModelFamily}s found on the class path ({@link ServiceLoader}), by
 * {@code model_type}: the one place a checkpoint folder's family is decided.
 *
 * <pre>{@code
 * ModelFamily<?> f = ModelFamilies.forFolder(dir);   // reads dir/config.json's model_type
 * Module m = f.load(dir, seed);                      // strict, eval mode
 * }</pre>
 */
public final class ModelFamilies {
    private static volatile Map<String, ModelFamily<?>> byType;

    private ModelFamilies() {
    }

    private static Map<String, ModelFamily<?>> byType() {
        Map<String, ModelFamily<?>> m = byType;
        if (m == null) {
            synchronized (ModelFamilies.class) {
                m = byType;
                if (m == null) {
                    Map<String, ModelFamily<?>> found = new TreeMap<>();
                    @SuppressWarnings("rawtypes")
                    ServiceLoader<ModelFamily> loader = ServiceLoader.load(ModelFamily.class, ModelFamilies.class.getClassLoader());
                    for (ModelFamily<?> family : loader) {
                        for (String type : family.modelTypes()) {
                            ModelFamily<?> prev = found.put(type.toLowerCase(Locale.ROOT), family);
                            if (prev != null && prev.getClass() != family.getClass()) {
                                throw new IllegalStateException("two model families claim model_type '" + type + "': "
                                        + prev.getClass().getName() + " and " + family.getClass().getName());
                            }
                        }
                    }
                    m = Collections.unmodifiableMap(found);
                    byType = m;
                }
            }
        }
        return m;
    }

    /** Every registered family, once each, in the order of their first model type. */
    public static List<ModelFamily<?>> all() {
        return new ArrayList<>(new LinkedHashSet<>(byType().values()));
    }

    /** Every registered {@code model_type}, sorted. */
    public static List<String> knownModelTypes() {
        return new ArrayList<>(byType().keySet());
    }

    /** The registered {@code model_type}s of families of {@code kind}, sorted. */
    public static List<String> modelTypes(ModelFamily.Kind kind) {
        List<String> out = new ArrayList<>();
        byType().forEach((type, f) -> {
            if (f.kind() == kind) {
                out.add(type);
            }
        });
        return out;
    }

    /** The family reading {@code modelType} (case-insensitive), if one is registered. */
    public static Optional<ModelFamily<?>> find(String modelType) {
        return modelType == null ? Optional.empty() : Optional.ofNullable(byType().get(modelType.toLowerCase(Locale.ROOT)));
    }

    /**
     * The family reading {@code modelType}.
     *
     * @param source the config file, for the message
     * @throws IllegalArgumentException naming the file, the type and every known type
     */
    public static ModelFamily<?> get(String modelType, String source) {
        return find(modelType).orElseThrow(() -> new IllegalArgumentException(source + ": "
                + (modelType == null || modelType.isEmpty() ? "no model_type" : "unknown model_type '" + modelType + "'")
                + "; known model types: " + String.join(", ", knownModelTypes())));
    }

    /** The family of a parsed {@code config.json} ({@code source} names it in errors). */
    public static ModelFamily<?> forConfig(JsonNode configJson, String source) {
        return get(configJson.path("model_type").asText(""), source);
    }

    /** The family of folder {@code dir}, from its {@code config.json}'s {@code model_type}. */
    public static ModelFamily<?> forFolder(Path dir) throws IOException {
        return forConfig(readConfig(dir), dir.resolve(HfFolder.CONFIG_FILE).toString());
    }

    /**
     * The {@code config.json} body of {@code model}, from the family whose model class it is
     * ({@link ModelFamily#configJson}); empty for a class no registered family knows.
     */
    public static Optional<ObjectNode> configJson(Module model) {
        for (ModelFamily<?> f : all()) {
            Optional<ObjectNode> c = f.configJson(model);
            if (c.isPresent()) {
                return c;
            }
        }
        return Optional.empty();
    }

    /**
     * The {@code model_type} of the first module in {@code model}'s tree (itself first) that a
     * registered family knows ({@link #configJson}), e.g. {@code "t5"} for a
     * {@code T5ForConditionalGeneration} inside a wrapper; empty when none. PEFT's per-family
     * defaults (LoRA's and IA3's {@code target_modules}) are keyed by it.
     */
    public static Optional<String> modelTypeOf(Module model) {
        for (Module m : model.namedModules().values()) {
            Optional<ObjectNode> c = configJson(m);
            if (c.isPresent() && c.get().hasNonNull("model_type")) {
                return Optional.of(c.get().get("model_type").asText().toLowerCase(Locale.ROOT));
            }
        }
        return Optional.empty();
    }

    /** {@code dir/config.json} as an object (an error naming the file when it is not one). */
    static ObjectNode readConfig(Path dir) throws IOException {
        JsonNode n = HfFolder.readConfig(dir);
        if (!(n instanceof ObjectNode o)) {
            throw new IllegalArgumentException(dir.resolve(HfFolder.CONFIG_FILE) + " is not a JSON object");
        }
        return o;
    }
}
