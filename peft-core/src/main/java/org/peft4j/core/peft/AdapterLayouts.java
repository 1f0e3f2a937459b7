package org.peft4j.core.peft;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;

/** The installed {@link AdapterLayout}s: AdapterHub's, PEFT's and any listed through {@link ServiceLoader}. */
public final class AdapterLayouts {
    private static volatile List<AdapterLayout> layouts;

    private AdapterLayouts() {
    }

    /** Every layout; PEFT's last (it is the default for configs no other layout writes). */
    public static List<AdapterLayout> all() {
        List<AdapterLayout> l = layouts;
        if (l == null) {
            synchronized (AdapterLayouts.class) {
                l = layouts;
                if (l == null) {
                    List<AdapterLayout> found = new ArrayList<>();
                    found.add(new AdapterHubLayout());
                    for (AdapterLayout x : ServiceLoader.load(AdapterLayout.class, AdapterLayouts.class.getClassLoader())) {
                        found.add(x);
                    }
                    found.add(new PeftLayout());
                    l = List.copyOf(found);
                    layouts = l;
                }
            }
        }
        return l;
    }

    /** The layout that writes {@code config}. */
    public static AdapterLayout forConfig(PeftConfig config) {
        for (AdapterLayout l : all()) {
            if (l.writes(config)) {
                return l;
            }
        }
        throw new IllegalStateException("no adapter layout writes " + config.peftType() + " configs");
    }

    /**
     * The layout of folder {@code dir}; PEFT's when no other recognizes it (its errors then name
     * the missing {@code adapter_config.json}).
     */
    public static AdapterLayout forFolder(Path dir) {
        for (AdapterLayout l : all()) {
            if (Files.isDirectory(dir) && l.recognizes(dir)) {
                return l;
            }
        }
        return all().get(all().size() - 1);
    }
}
