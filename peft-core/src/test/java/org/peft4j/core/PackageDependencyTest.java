package org.peft4j.core;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The rooms of peft-core and which doors they may not use: a package may not reach "up" into a
 * package built on top of it. Read from the main sources (imports and fully qualified names
 * outside comments and string literals), so it needs no bytecode library.
 *
 * <pre>
 *   tensor            ← nn ← model
 *   io, data, tokenizer   (leaves: files and text, no modules)
 *   train             (sees modules and tensors, never a model family or the PEFT SPI)
 * </pre>
 */
class PackageDependencyTest {
    /** Package → core packages it must not reference. */
    private static final Map<String, Set<String>> FORBIDDEN = Map.of(
            "tensor", Set.of("nn", "model", "io", "peft", "train", "data", "tokenizer"),
            "io", Set.of("model", "nn", "peft", "train"),
            "data", Set.of("model", "nn", "peft", "train"),
            "tokenizer", Set.of("model", "nn", "peft", "train"),
            "nn", Set.of("model", "peft", "train"),
            "train", Set.of("model", "peft"));
    /** Modules built on peft-core: core never names them. */
    private static final Pattern METHOD_MODULE =
            Pattern.compile("\\borg\\.peft4j\\.(lora|quant|adapter|prompt|distill|examples|benchmarks|spark)\\b");
    private static final Pattern CORE_REF = Pattern.compile("\\borg\\.peft4j\\.core\\.([a-z]+)\\b");
    private static final Path ROOT = Path.of("src/main/java/org/peft4j/core");

    /** Source package (first segment under core) → referenced core package → files. */
    static Map<String, Map<String, Set<String>>> edges;
    static Map<String, Set<String>> methodRefs;
    static int files;

    @BeforeAll
    static void scan() throws IOException {
        assertTrue(Files.isDirectory(ROOT), "run from the peft-core module folder; " + ROOT.toAbsolutePath() + " is missing");
        edges = new TreeMap<>();
        methodRefs = new TreeMap<>();
        List<Path> sources;
        try (Stream<Path> s = Files.walk(ROOT)) {
            sources = s.filter(p -> p.toString().endsWith(".java")).sorted().toList();
        }
        for (Path f : sources) {
            Path rel = ROOT.relativize(f);
            if (rel.getNameCount() < 2) {
                continue;   // a file directly in org.peft4j.core
            }
            String pkg = rel.getName(0).toString();
            String code = code(Files.readString(f, StandardCharsets.UTF_8));
            Matcher m = CORE_REF.matcher(code);
            while (m.find()) {
                if (!m.group(1).equals(pkg)) {
                    edges.computeIfAbsent(pkg, k -> new TreeMap<>()).computeIfAbsent(m.group(1), k -> new TreeSet<>())
                            .add(rel.toString());
                }
            }
            Matcher mm = METHOD_MODULE.matcher(code);
            while (mm.find()) {
                methodRefs.computeIfAbsent(rel.toString(), k -> new TreeSet<>()).add(mm.group());
            }
            files++;
        }
    }

    /** Source text without comments, string literals and text blocks (which may mention any package). */
    static String code(String source) {
        String s = source.replaceAll("\"\"\"[\\s\\S]*?\"\"\"", "\"\"");
        s = s.replaceAll("\"(?:\\\\.|[^\"\\\\\\n])*\"", "\"\"");
        s = s.replaceAll("'(?:\\\\.|[^'\\\\\\n])+'", "' '");
        s = s.replaceAll("/\\*[\\s\\S]*?\\*/", " ");
        return s.replaceAll("//[^\\n]*", "");
    }

    @Test
    void scannerSeesCodeButNotCommentsOrStrings() {
        String src = """
                package org.peft4j.core.io;
                import org.peft4j.core.tensor.Tensor;   // see org.peft4j.core.model.bert
                /** {@link org.peft4j.core.peft.PeftModel} */
                class X { String s = "org.peft4j.core.train.Trainer"; Object o = org.peft4j.core.nn.Linear.class; }
                """;
        Matcher m = CORE_REF.matcher(code(src));
        List<String> found = new ArrayList<>();
        while (m.find()) {
            found.add(m.group(1));
        }
        assertEquals(List.of("io", "tensor", "nn"), found);
        // the real tree is scanned, and a known allowed edge is found (model uses io to read checkpoints)
        assertTrue(files > 100, "only " + files + " sources scanned under " + ROOT.toAbsolutePath());
        assertTrue(edges.getOrDefault("model", Map.of()).containsKey("io"), "model -> io not seen: " + edges.get("model"));
    }

    @Test
    void noPackageReachesUpIntoOneBuiltOnIt() {
        List<String> violations = new ArrayList<>();
        FORBIDDEN.forEach((pkg, banned) -> edges.getOrDefault(pkg, Map.of()).forEach((to, where) -> {
            if (banned.contains(to)) {
                violations.add(pkg + " -> " + to + " in " + where);
            }
        }));
        assertEquals(List.of(), violations, "package rules broken (see this test's class comment)");
    }

    @Test
    void coreNamesNoModuleBuiltOnIt() {
        assertEquals(Map.of(), methodRefs, "peft-core must not depend on method modules, examples or benchmarks");
    }
}
