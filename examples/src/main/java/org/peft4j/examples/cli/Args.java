package org.peft4j.examples.cli;

import java.nio.file.Path;
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
    /** Every value of each option, for options that may repeat ({@code --set a=1 --set b=2}). */
    private final Map<String, List<String>> all = new LinkedHashMap<>();
    private final List<String> positionals = new ArrayList<>();

    Args(String[] argv, int from, Set<String> valueOptions, Set<String> flagOptions) {
        for (int i = from; i < argv.length; i++) {
            String a = argv[i];
            if (a.startsWith("--") && a.length() > 2) {
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
                    all.computeIfAbsent(key, k -> new ArrayList<>()).add(value);
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

    /** All values given for a repeatable option, in order (empty when absent). */
    List<String> getAll(String key) {
        return all.getOrDefault(key, List.of());
    }

    boolean has(String key) {
        return options.containsKey(key);
    }

    /** A positive integer option. */
    int getPositiveInt(String key, int def) {
        int v = getInt(key, def);
        if (v <= 0) {
            throw new CliException("--" + key + " must be a positive integer, got " + v);
        }
        return v;
    }

    /** A positive number option. */
    double getPositiveDouble(String key, double def) {
        double v = getDouble(key, def);
        if (!(v > 0) || Double.isInfinite(v)) {
            throw new CliException("--" + key + " must be a positive number, got " + v);
        }
        return v;
    }

    Path getPath(String key) {
        String v = options.get(key);
        return v == null ? null : Path.of(v);
    }

    Path getPath(String key, Path def) {
        String v = options.get(key);
        return v == null ? def : Path.of(v);
    }

    List<String> positionals() {
        return positionals;
    }

    /** Fails unless there are exactly {@code n} positional arguments, naming what they should be. */
    void expectPositionals(int n, String what) {
        if (positionals.size() != n) {
            throw new CliException(n == 0
                    ? "unexpected argument '" + positionals.get(0) + "'"
                    : "expected " + what + (positionals.isEmpty() ? "" : ", got " + positionals));
        }
    }
}
