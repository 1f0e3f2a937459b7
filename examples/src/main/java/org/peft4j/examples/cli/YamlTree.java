package org.peft4j.examples.cli;

import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLParser;

import java.io.IOException;
import java.io.Reader;
import java.io.StringReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * A YAML document as a Jackson tree, with anchors and aliases resolved as YAML defines them
 * (Jackson's own tree reader returns an alias as the string of its name) and the merge key
 * {@code <<}. Expansion is bounded: the tree may hold at most {@link #MAX_NODES} nodes after
 * every alias is expanded, so a "billion laughs" file is refused as soon as it crosses that,
 * whatever its number of aliases; the parser underneath also bounds aliases, nesting and size
 * ({@link TrainRecipe#yaml()}).
 */
final class YamlTree {
    /** Nodes in the expanded tree: a training recipe has a few hundred. */
    static final int MAX_NODES = 100_000;

    private final YAMLParser p;
    private final String source;
    private final Map<String, JsonNode> anchors = new HashMap<>();
    private final Map<String, Integer> anchorSizes = new HashMap<>();
    private long nodes;

    private YamlTree(YAMLParser p, String source) {
        this.p = p;
        this.source = source;
    }

    /** The document in {@code file}; null when it is empty. */
    static JsonNode read(Path file, YAMLFactory factory) throws IOException {
        try (Reader r = Files.newBufferedReader(file)) {
            return read(r, factory, file.toString());
        }
    }

    static JsonNode read(String text, YAMLFactory factory, String source) throws IOException {
        return read(new StringReader(text), factory, source);
    }

    private static JsonNode read(Reader r, YAMLFactory factory, String source) throws IOException {
        try (YAMLParser p = (YAMLParser) factory.createParser(r)) {
            if (p.nextToken() == null) {
                return null;
            }
            YamlTree t = new YamlTree(p, source);
            return t.value();
        }
    }

    private JsonNode value() throws IOException {
        JsonToken tok = p.currentToken();
        if (p.isCurrentAlias()) {
            String name = p.getText();
            JsonNode target = anchors.get(name);
            if (target == null) {
                throw new CliException(source + ": alias *" + name + " refers to no anchor defined before it"
                        + location());
            }
            count(anchorSizes.get(name));
            return target.deepCopy();
        }
        String anchor = p.getCurrentAnchor();
        long before = nodes;
        JsonNode node;
        JsonNodeFactory f = JsonNodeFactory.instance;
        switch (tok) {
            case START_OBJECT -> {
                count(1);
                ObjectNode o = f.objectNode();
                List<JsonNode> merges = new ArrayList<>();
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String name = p.currentName();
                    p.nextToken();
                    JsonNode v = value();
                    if (name.equals("<<")) {
                        merges.add(v);
                    } else {
                        o.set(name, v);
                    }
                }
                // merge keys: explicit keys of this mapping win, then earlier merged mappings
                for (JsonNode m : merges) {
                    List<JsonNode> parts = m.isArray() ? toList(m) : List.of(m);
                    for (JsonNode part : parts) {
                        if (!part.isObject()) {
                            throw new CliException(source + ": '<<' must merge a mapping, got " + part.getNodeType());
                        }
                        for (Iterator<Map.Entry<String, JsonNode>> it = part.fields(); it.hasNext(); ) {
                            Map.Entry<String, JsonNode> e = it.next();
                            if (!o.has(e.getKey())) {
                                o.set(e.getKey(), e.getValue());
                            }
                        }
                    }
                }
                node = o;
            }
            case START_ARRAY -> {
                count(1);
                ArrayNode a = f.arrayNode();
                while (p.nextToken() != JsonToken.END_ARRAY) {
                    a.add(value());
                }
                node = a;
            }
            case VALUE_STRING -> {
                count(1);
                node = f.textNode(p.getText());
            }
            case VALUE_NUMBER_INT -> {
                count(1);
                node = switch (p.getNumberType()) {
                    case INT -> f.numberNode(p.getIntValue());
                    case LONG -> f.numberNode(p.getLongValue());
                    default -> f.numberNode(p.getBigIntegerValue());
                };
            }
            case VALUE_NUMBER_FLOAT -> {
                count(1);
                node = f.numberNode(p.getDoubleValue());
            }
            case VALUE_TRUE, VALUE_FALSE -> {
                count(1);
                node = f.booleanNode(tok == JsonToken.VALUE_TRUE);
            }
            case VALUE_NULL -> {
                count(1);
                node = f.nullNode();
            }
            default -> throw new CliException(source + ": unexpected YAML content " + tok + location());
        }
        if (anchor != null) {
            anchors.put(anchor, node);
            anchorSizes.put(anchor, (int) Math.min(Integer.MAX_VALUE, nodes - before));
        }
        return node;
    }

    private static List<JsonNode> toList(JsonNode a) {
        List<JsonNode> l = new ArrayList<>();
        a.forEach(l::add);
        return l;
    }

    private void count(long n) {
        nodes += n;
        if (nodes > MAX_NODES) {
            throw new CliException(source + ": the YAML expands to more than " + MAX_NODES + " values once its"
                    + " aliases are resolved (an alias bomb?)" + location());
        }
    }

    private String location() {
        var loc = p.currentLocation();
        return loc == null ? "" : " (line " + loc.getLineNr() + ")";
    }
}
