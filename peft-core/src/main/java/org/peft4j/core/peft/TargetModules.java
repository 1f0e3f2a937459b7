package org.peft4j.core.peft;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.TreeSet;

/**
 * PEFT's {@code target_modules}: either a list of names (a module matches when its full dotted
 * name equals an entry or ends with {@code "." + entry}), or one string that is a regular
 * expression which must match the whole module name, or the shorthand {@code "all-linear"}.
 *
 * <p>In {@code adapter_config.json} a list is written as a JSON array (sorted, as PEFT keeps a
 * set) and a regex as a JSON string.
 */
public final class TargetModules {
    /** PEFT's shorthand for "every linear layer except the output head". */
    public static final String ALL_LINEAR = "all-linear";

    private final List<String> names;   // null when this is a regex
    private final String regex;         // null when this is a list

    private TargetModules(List<String> names, String regex) {
        this.names = names;
        this.regex = regex;
    }

    /** A list of module names (exact or {@code .}-suffix matches). */
    public static TargetModules of(String... names) {
        return of(List.of(names));
    }

    public static TargetModules of(Collection<String> names) {
        Objects.requireNonNull(names, "names");
        List<String> copy = new ArrayList<>();
        for (String n : names) {
            if (n == null || n.isEmpty()) {
                throw new IllegalArgumentException("target_modules entries must be non-empty strings, got " + names);
            }
            copy.add(n);
        }
        return new TargetModules(Collections.unmodifiableList(new ArrayList<>(new TreeSet<>(copy))), null);
    }

    /** A regular expression that must match the whole module name. */
    public static TargetModules regex(String regex) {
        if (regex == null || regex.isEmpty()) {
            throw new IllegalArgumentException("target_modules regex must be a non-empty string");
        }
        return new TargetModules(null, regex);
    }

    /** Every linear layer except the output head (PEFT's {@code "all-linear"}). */
    public static TargetModules allLinear() {
        return new TargetModules(null, ALL_LINEAR);
    }

    /** From the JSON value: a string (regex or "all-linear") or an array of strings. */
    @JsonCreator
    public static TargetModules fromJson(Object value) {
        if (value instanceof String s) {
            return s.equalsIgnoreCase(ALL_LINEAR) ? allLinear() : regex(s);
        }
        if (value instanceof Collection<?> c) {
            List<String> out = new ArrayList<>();
            for (Object o : c) {
                if (!(o instanceof String s)) {
                    throw new IllegalArgumentException("target_modules entries must be strings, got " + o);
                }
                out.add(s);
            }
            return of(out);
        }
        throw new IllegalArgumentException("target_modules must be a string or a list of strings, got " + value);
    }

    @JsonValue
    public Object toJson() {
        return names != null ? names : regex;
    }

    public boolean isList() {
        return names != null;
    }

    public boolean isRegex() {
        return names == null && !isAllLinear();
    }

    public boolean isAllLinear() {
        return names == null && ALL_LINEAR.equalsIgnoreCase(regex);
    }

    /** The names of a list form (sorted); empty for a regex. */
    public List<String> names() {
        return names == null ? List.of() : names;
    }

    /** The regex of a string form, or null for a list. */
    public String pattern() {
        return regex;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TargetModules t && Objects.equals(names, t.names) && Objects.equals(regex, t.regex);
    }

    @Override
    public int hashCode() {
        return Objects.hash(names, regex);
    }

    @Override
    public String toString() {
        return names != null ? names.toString() : "'" + regex + "'";
    }
}
