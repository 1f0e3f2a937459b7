package org.peft4j.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Predicate;
import java.util.function.UnaryOperator;

/**
 * The one strict loader of named tensors into parameters, used by {@link Module#loadStateDict}
 * and by PEFT adapter loading: every stored key is first mapped to its canonical name
 * ({@link #keys}: legacy forms, adapter names inside keys, aliases), then
 * <ul>
 *   <li>an expected key with no tensor is <em>missing</em>,</li>
 *   <li>a tensor whose key names no parameter is <em>unexpected</em>,</li>
 *   <li>two stored keys that map to one name, and a tensor whose shape differs from its
 *       parameter's, are errors;</li>
 * </ul>
 * one error message names every such key with both shapes and the source (the file). Nothing
 * is written unless every check passed, so a bad file leaves the parameters as they were.
 *
 * <pre>{@code
 * StateDictLoader.into(expected, "adapter 'default' of BertModel")
 *         .keys(method::normalizeKey).load(tensors, "dir/adapter_model.safetensors", true);
 * }</pre>
 */
public final class StateDictLoader {
    /** How many keys of one kind an error message lists before "…". */
    private static final int LISTED = 10;

    private final Map<String, Parameter> expected;
    private final String target;
    private UnaryOperator<String> canonical = UnaryOperator.identity();
    private Predicate<String> reshapable = k -> false;
    private String unexpectedHint;

    private StateDictLoader(Map<String, Parameter> expected, String target) {
        this.expected = Objects.requireNonNull(expected, "expected parameters");
        this.target = target;
    }

    /**
     * A loader into {@code expected} (canonical key → parameter); {@code target} says what they
     * belong to in messages ({@code "BertModel"}, {@code "adapter 'default' of BertModel"}).
     */
    public static StateDictLoader into(Map<String, Parameter> expected, String target) {
        return new StateDictLoader(expected, target);
    }

    /** Maps a stored key to its canonical name (default: unchanged). */
    public StateDictLoader keys(UnaryOperator<String> canonicalKey) {
        this.canonical = Objects.requireNonNull(canonicalKey);
        return this;
    }

    /**
     * Canonical keys whose tensor may come in another shape with the same number of elements and
     * is then reshaped (a vector stored as {@code [n, 1]} by older writers, say).
     */
    public StateDictLoader reshapable(Predicate<String> canonicalKeys) {
        this.reshapable = Objects.requireNonNull(canonicalKeys);
        return this;
    }

    /** Added to the message about unexpected keys: why they may be there. */
    public StateDictLoader unexpectedHint(String hint) {
        this.unexpectedHint = hint;
        return this;
    }

    /**
     * Checks {@code tensors} (stored key → value, from {@code source}) against the expected
     * parameters and copies the values in (as new c-ordered arrays). Shape mismatches and
     * duplicate keys are always errors; missing and unexpected keys are errors when
     * {@code strict}, otherwise returned.
     *
     * @throws IllegalArgumentException naming every offending key, both shapes and {@code source}
     */
    public Module.LoadResult load(Map<String, INDArray> tensors, String source, boolean strict) {
        Map<String, INDArray> found = new LinkedHashMap<>();
        Map<String, String> storedKey = new LinkedHashMap<>();
        List<String> unexpected = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
            String k = canonical.apply(e.getKey());
            if (!expected.containsKey(k)) {
                unexpected.add(e.getKey());
                continue;
            }
            if (found.containsKey(k)) {
                problems.add("two tensors map to '" + k + "' ('" + storedKey.get(k) + "' and '" + e.getKey() + "')");
                continue;
            }
            found.put(k, e.getValue());
            storedKey.put(k, e.getKey());
        }
        List<String> missing = new ArrayList<>();
        for (String k : expected.keySet()) {
            if (!found.containsKey(k)) {
                missing.add(k);
            }
        }
        if (strict && !missing.isEmpty()) {
            problems.add(0, "missing keys " + few(missing) + " (the source lacks " + missing.size() + " tensor(s))");
        }
        if (strict && !unexpected.isEmpty()) {
            problems.add(strict && !missing.isEmpty() ? 1 : 0, "unexpected keys " + few(unexpected) + " (" + unexpected.size()
                    + " tensor(s) fit no parameter" + (unexpectedHint == null ? "" : "; " + unexpectedHint) + ")");
        }
        Map<String, INDArray> values = new LinkedHashMap<>();
        for (Map.Entry<String, INDArray> e : found.entrySet()) {
            String k = e.getKey();
            INDArray v = e.getValue();
            long[] want = expected.get(k).shape();
            if (!Arrays.equals(v.shape(), want)) {
                if (reshapable.test(k) && v.length() == expected.get(k).length()) {
                    v = v.reshape(want);
                } else {
                    String stored = storedKey.get(k);
                    problems.add("shape mismatch for '" + stored + "'" + (stored.equals(k) ? "" : " (as '" + k + "')")
                            + ": expected " + Arrays.toString(want) + ", found " + Arrays.toString(v.shape()));
                    continue;
                }
            }
            values.put(k, v);
        }
        if (!problems.isEmpty()) {
            throw new IllegalArgumentException(source + " does not fit " + target + ": " + String.join("; ", problems));
        }
        values.forEach((k, v) -> expected.get(k).setValue(v.dup('c')));
        return new Module.LoadResult(missing, unexpected);
    }

    private static String few(Collection<String> keys) {
        List<String> out = new ArrayList<>();
        for (String k : keys) {
            if (out.size() == LISTED) {
                out.add("... " + (keys.size() - LISTED) + " more");
                break;
            }
            out.add(k);
        }
        return out.toString();
    }
}
