package org.peft4j.examples.cli;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Minimal GNU-style argument parsing: {@code --key value}, {@code --key=value}, bare flags
 * ({@code --double-quant}) and positionals. Unknown options are an error naming them.
 */
final class Args {
    private final Map<String, String> options = new LinkedHashMap<>();
    private final List<String> positionals = new ArrayList<>();

    Args(String[] argv, int from, Set<String> valueOptions, Set<String> flagOptions) {
        for (int i = from; i < argv.length; i++) {
            String a = argv[i];
            if (a.startsWith("--")) {
                String key = a.substring(2);
                String value = null;
                int eq = key.indexOf('=');
                if (eq >= 0) {
                    value = key.substring(eq + 1);
                    key = key.substring(0, eq);
                }
                if (flagOptions.contains(key)) {
                    options.put(key, value == null ? "true" : value);
                } else if (valueOptions.contains(key)) {
                    if (value == null) {
                        if (i + 1 >= argv.length) {
                            throw new CliException("option --" + key + " needs a value");
                        }
                        value = argv[++i];
                    }
                    options.put(key, value);
                } else {
                    throw new CliException("unknown option --" + key + " (known: "
                            + String.join(", ", union(valueOptions, flagOptions)) + ")");
                }
            } else {
                positionals.add(a);
            }
        }
    }

    private static List<String> union(Set<String> a, Set<String> b) {
        List<String> out = new ArrayList<>();
        a.forEach(s -> out.add("--" + s));
        b.forEach(s -> out.add("--" + s));
        return out;
    }

    String get(String key) {
        return options.get(key);
    }

    String get(String key, String def) {
        return options.getOrDefault(key, def);
    }

    String require(String key) {
        String v = options.get(key);
        if (v == null) {
            throw new CliException("missing required option --" + key);
        }
        return v;
    }

    boolean flag(String key) {
        return Boolean.parseBoolean(options.getOrDefault(key, "false"));
    }

    int getInt(String key, int def) {
        String v = options.get(key);
        if (v == null) {
            return def;
        }
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new CliException("--" + key + " must be an integer, got '" + v + "'");
        }
    }

    long getLong(String key, long def) {
        String v = options.get(key);
        if (v == null) {
            return def;
        }
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new CliException("--" + key + " must be an integer, got '" + v + "'");
        }
    }

    double getDouble(String key, double def) {
        String v = options.get(key);
        if (v == null) {
            return def;
        }
        try {
            return Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw new CliException("--" + key + " must be a number, got '" + v + "'");
        }
    }

    List<String> positionals() {
        return positionals;
    }
}
