package org.peft4j.examples.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzes every parser ({@link FuzzTargets}) with Jazzer's coverage-guided driver for a fixed
 * budget each, in a child JVM per target (Jazzer fuzzes one target per JVM), seeded with the
 * committed inputs of {@link ParserFuzzTest}. A target fails if the fuzzer finds any input on
 * which the parser throws something other than the project's named errors.
 *
 * <p>Budget. The regular run is deterministic: a fixed number of inputs per target
 * ({@link FuzzTargets#REGULAR_RUNS}, libFuzzer's {@code -runs}) from a fixed seed ({@code -seed=1}),
 * so it executes the same inputs on every machine however fast it is (a wall-clock budget made
 * a slow machine, or a fast one, explore differently and find different things). A time-based
 * run, longer, on demand: {@code -Dpeft4j.fuzz.seconds=N} per target (libFuzzer's
 * {@code -max_total_time}, no run limit); {@code -Dpeft4j.fuzz.seed=S} changes the seed;
 * {@code -Dpeft4j.fuzz.parallel=P} children at a time (default 2):
 * <pre>
 *   mvn -pl examples -am test -Dtest=FuzzBudgetTest -Dpeft4j.fuzz.seconds=60 -Dpeft4j.fuzz.parallel=1 -Dsurefire.failIfNoSpecifiedTests=false
 * </pre>
 * ({@code -Dpeft4j.fuzz.includes=org.peft4j.**:com.fasterxml.jackson.**:org.yaml.**} also guides the
 * fuzzer through Jackson's and SnakeYAML's code, at ~6 s more start-up per target.)
 * Executions per target are appended to {@code examples/target/fuzz-report.txt}.
 */
class FuzzBudgetTest {
    private static final Pattern DONE = Pattern.compile("Done (\\d+) runs in (\\d+) second");

    @TempDir
    Path tmp;

    @Test
    void noTargetFindsAnUnexpectedException() throws Exception {
        int seconds = Integer.getInteger("peft4j.fuzz.seconds", 0);  // 0: the fixed run counts
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Path report = Path.of("target", "fuzz-report.txt");
        Files.createDirectories(report.getParent());
        int parallel = Integer.getInteger("peft4j.fuzz.parallel", 2);
        ExecutorService pool = Executors.newFixedThreadPool(parallel);
        assertEquals(FuzzTargets.TARGETS.keySet(), FuzzTargets.REGULAR_RUNS.keySet(), "a run count for every target");
        long start = System.nanoTime();
        Map<String, Future<String[]>> results = new LinkedHashMap<>();
        // -Dpeft4j.fuzz.targets=a,b fuzzes only those (e.g. one target for a long on-demand run)
        List<String> only = List.of(System.getProperty("peft4j.fuzz.targets", "").split(",")).stream()
                .map(String::strip).filter(x -> !x.isEmpty()).toList();
        for (String name : only) {
            assertTrue(FuzzTargets.TARGETS.containsKey(name), "-Dpeft4j.fuzz.targets: no target '" + name + "' (known: "
                    + FuzzTargets.TARGETS.keySet() + ")");
        }
        for (String name : FuzzTargets.TARGETS.keySet()) {
            if (only.isEmpty() || only.contains(name)) {
                results.put(name, pool.submit(() -> fuzz(name, seconds, cp, java)));
            }
        }
        pool.shutdown();
        List<String> failures = new ArrayList<>();
        StringBuilder summary = new StringBuilder();
        for (Future<String[]> f : results.values()) {
            String[] r = f.get();
            summary.append(r[0]);
            if (r[1] != null) {
                failures.add(r[1]);
            }
        }
        summary.append(String.format(Locale.ROOT, "all targets: %.1f s wall, %d at a time%n",
                (System.nanoTime() - start) / 1e9, parallel));
        Files.writeString(report, summary, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        System.out.print(summary);
        assertEquals(List.of(), failures, String.join("\n\n", failures));
    }

    /** Fuzzes one target in a child JVM; returns its summary line and a failure message (or null). */
    private String[] fuzz(String name, int seconds, String cp, Path java) throws Exception {
        Path corpus = Files.createDirectories(tmp.resolve("corpus-" + name));
        Path artifacts = Files.createDirectories(Path.of("target", "fuzz-artifacts", name)).toAbsolutePath();
        int seeds = copySeeds(ParserFuzzTest.methodOf(name), corpus);
        String budget = seconds > 0 ? "-max_total_time=" + seconds : "-runs=" + FuzzTargets.REGULAR_RUNS.get(name);
        Path log = Files.createDirectories(Path.of("target", "fuzz-logs")).resolve(name + ".log");
        List<String> cmd = List.of(java.toString(), "-Xmx768m", "-Dorg.bytedeco.javacpp.maxbytes=1g",
                "-Dorg.bytedeco.javacpp.maxphysicalbytes=2g", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dpeft4j.fuzz.target=" + name, "-Dpeft4j.fuzz.seeds=" + corpus,
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=error",
                "-cp", cp, "com.code_intelligence.jazzer.Jazzer",
                "--target_class=" + FuzzTargets.class.getName(),
                "--instrumentation_includes=" + System.getProperty("peft4j.fuzz.includes", "org.peft4j.**"),
                "--custom_hook_excludes=org.peft4j.**",
                budget, "-seed=" + Long.getLong("peft4j.fuzz.seed", 1), "-rss_limit_mb=3072", "-timeout=20",
                "--reproducer_path=" + artifacts, "-artifact_prefix=" + artifacts + "/", corpus.toString());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        long t0 = System.nanoTime();
        boolean done = p.waitFor(seconds > 0 ? seconds + 120L : 600L, TimeUnit.SECONDS);
        double wall = (System.nanoTime() - t0) / 1e9;
        if (!done) {
            p.destroyForcibly();
        }
        String out = Files.readString(log);
        Matcher m = DONE.matcher(out);
        long runs = m.find() ? Long.parseLong(m.group(1)) : -1;
        int rc = done ? p.exitValue() : -1;
        String line = String.format(Locale.ROOT, "%-16s %9d execs, %s, seed %d (%d seed inputs): %.1f s wall, exit %d%n",
                name, runs, budget, Long.getLong("peft4j.fuzz.seed", 1), seeds, wall, rc);
        String failure = rc != 0 || runs <= 0
                ? name + ": exit " + rc + ", " + runs + " runs; crasher in " + artifacts + "\n" + tail(out, 3000) : null;
        return new String[]{line, failure};
    }

    private static int copySeeds(String method, Path corpus) throws IOException, URISyntaxException {
        URL dir = FuzzBudgetTest.class.getResource("ParserFuzzTestInputs/" + method);
        if (dir == null) {
            return 0;
        }
        int n = 0;
        try (Stream<Path> files = Files.list(Path.of(dir.toURI()))) {
            for (Path f : (Iterable<Path>) files::iterator) {
                try (InputStream in = Files.newInputStream(f)) {
                    Files.write(corpus.resolve(f.getFileName().toString()), in.readAllBytes());
                }
                n++;
            }
        }
        assertTrue(n > 0, method);
        return n;
    }

    private static String tail(String s, int n) {
        return s.length() <= n ? s : s.substring(s.length() - n);
    }
}
