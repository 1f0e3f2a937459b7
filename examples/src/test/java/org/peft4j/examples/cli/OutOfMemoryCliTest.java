package org.peft4j.examples.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A real out-of-memory, not a made-up error: {@code peft4j embed --model minilm} (90 MB of
 * weights) in a child JVM whose heap, or whose physical-memory limit (JavaCPP's
 * {@code maxphysicalbytes}, which ND4J's off-heap buffers count against), is too small. Each
 * must end as a user error: exit 2, one line on stderr naming the kind of memory, the limits and
 * {@code PEFT4J_JAVA_OPTS}, no stack trace.
 */
class OutOfMemoryCliTest {
    @TempDir
    Path tmp;

    private String run(String name, String... jvm) throws IOException, InterruptedException {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        cmd.addAll(List.of(jvm));
        cmd.addAll(List.of("-XX:+UseSerialGC", "-cp", cp, Peft4jCli.class.getName(), "embed", "--model", "minilm", "--text", "hi"));
        Path errLog = tmp.resolve(name + ".err");
        Process p = new ProcessBuilder(cmd).redirectError(errLog.toFile()).redirectOutput(tmp.resolve(name + ".out").toFile()).start();
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), name + ": the child JVM finishes");
        String err = Files.readString(errLog).strip();
        assertEquals(2, p.exitValue(), name + ": exit status 2 (a user error), stderr: " + err);
        List<String> lines = err.lines().filter(l -> l.startsWith("peft4j ")).toList();
        assertEquals(1, lines.size(), name + ": one peft4j line on stderr: " + err);
        assertFalse(err.contains("\tat ") || err.contains("Exception"), name + ": no stack trace: " + err);
        assertTrue(lines.get(0).contains("PEFT4J_JAVA_OPTS"), lines.get(0));
        return lines.get(0);
    }

    @Test
    void aHeapTooSmallForTheModelNamesTheHeapLimit() throws Exception {
        String line = run("heap", "-Xmx24m", "-Dorg.bytedeco.javacpp.maxbytes=2g", "-Dorg.bytedeco.javacpp.maxphysicalbytes=4g");
        assertTrue(line.startsWith("peft4j embed: error: out of Java heap memory (heap limit "), line);
    }

    @Test
    void aPhysicalMemoryLimitTooSmallForTheModelNamesTheOffHeapLimits() throws Exception {
        String line = run("physical", "-Xmx1g", "-Dorg.bytedeco.javacpp.maxbytes=2g", "-Dorg.bytedeco.javacpp.maxphysicalbytes=300m");
        assertTrue(line.startsWith("peft4j embed: error: out of off-heap (ND4J) memory"), line);
        assertTrue(line.contains("physical memory limit 300 MB"), line);
    }
}
