package org.peft4j.core.peft;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.TreeMap;

/** The {@link PeftMethod}s found on the class path, by {@code peft_type}. */
public final class PeftMethods {
    private static volatile Map<String, PeftMethod> methods;

    private PeftMethods() {
    }

    private static Map<String, PeftMethod> methods() {
        Map<String, PeftMethod> m = methods;
        if (m == null) {
            synchronized (PeftMethods.class) {
                m = methods;
                if (m == null) {
                    Map<String, PeftMethod> found = new TreeMap<>();
                    for (PeftMethod method : ServiceLoader.load(PeftMethod.class, PeftMethods.class.getClassLoader())) {
                        PeftMethod prev = found.put(method.peftType(), method);
                        if (prev != null && prev.getClass() != method.getClass()) {
                            throw new IllegalStateException("two PEFT methods claim peft_type '" + method.peftType() + "': "
                                    + prev.getClass().getName() + " and " + method.getClass().getName());
                        }
                    }
                    m = Collections.unmodifiableMap(found);
                    methods = m;
                }
            }
        }
        return m;
    }

    /** Every installed method. */
    public static Collection<PeftMethod> all() {
        return new ArrayList<>(methods().values());
    }

    /** The installed {@code peft_type} values, sorted. */
    public static java.util.List<String> installedTypes() {
        return new ArrayList<>(methods().keySet());
    }

    /** The method for a {@code peft_type}; the error lists the installed types. */
    public static PeftMethod get(String peftType) {
        return get(peftType, null);
    }

    static PeftMethod get(String peftType, String source) {
        PeftMethod m = methods().get(peftType);
        if (m == null) {
            throw new IllegalArgumentException("unknown peft_type '" + peftType + "'" + (source == null ? "" : " in " + source)
                    + "; installed types: " + installedTypes()
                    + " (a PEFT method is installed by putting its module, e.g. peft-lora, on the class path)");
        }
        return m;
    }

    /** The method whose config class is (a superclass of) the config's class. */
    public static PeftMethod forConfig(PeftConfig config) {
        PeftMethod m = get(config.peftType());
        if (!m.configClass().isInstance(config)) {
            throw new IllegalArgumentException("config class " + config.getClass().getName() + " does not belong to the "
                    + config.peftType() + " method (expects " + m.configClass().getName() + ")");
        }
        return m;
    }
}
