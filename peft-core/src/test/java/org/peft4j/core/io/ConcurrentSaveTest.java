package org.peft4j.core.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two writers saving to one folder at once ({@link AtomicFiles#replaceDirectory}): both finish,
 * and the folder is always one writer's complete content (its two files agree), with no temporary
 * or old folder left. Checked with two threads and with two processes.
 */
class ConcurrentSaveTest {
    @TempDir
    Path tmp;

    /** {@code main(dir, id, n)}: saves {@code n} times a folder of two files that both say {@code id}. */
    public static void main(String[] args) throws Exception {
        save(Path.of(args[0]), args[1], Integer.parseInt(args[2]));
    }

    static void save(Path dir, String id, int n) throws IOException {
        for (int i = 0; i < n; i++) {
            String value = id + "-" + i;
            AtomicFiles.replaceDirectory(dir, staging -> {
                Files.writeString(staging.resolve("a.txt"), value);
                try {
                    Thread.sleep(2); // widen the window in which the other writer could interleave
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                Files.writeString(staging.resolve("b.txt"), value);
            });
        }
    }

    private void assertOneCompleteFolder(Path dir, String... ids) throws IOException {
        String a = Files.readString(dir.resolve("a.txt"));
        assertEquals(a, Files.readString(dir.resolve("b.txt")), "the two files come from one save");
        boolean known = false;
        for (String id : ids) {
            known |= a.startsWith(id + "-");
        }
        assertTrue(known, a);
        try (Stream<Path> s = Files.list(dir.getParent())) {
            assertEquals(List.of(dir.getFileName().toString()), s.map(p -> p.getFileName().toString()).sorted().toList(),
                    "no temporary or old folder left");
        }
    }

    @Test
    void aSaveKilledBetweenItsTwoRenamesIsRepairedToThePreviousVersion() throws Exception {
        // what a SIGKILL after "old folder moved aside" and before "new folder moved in" leaves:
        // the complete previous version under .adapter.old-*, an unfinished .adapter.tmp-*, no adapter/
        Path parent = Files.createDirectories(tmp.resolve("killed"));
        Path old = Files.createDirectories(parent.resolve(".adapter.old-123"));
        Files.writeString(old.resolve("a.txt"), "v1-0");
        Files.writeString(old.resolve("b.txt"), "v1-0");
        Path partial = Files.createDirectories(parent.resolve(".adapter.tmp-456"));
        Files.writeString(partial.resolve("a.txt"), "v2-0");
        Path dir = parent.resolve("adapter");
        AtomicFiles.recover(dir);
        assertEquals("v1-0", Files.readString(dir.resolve("a.txt")));
        assertOneCompleteFolder(dir, "v1");
        // and the next save works normally on top of it
        save(dir, "v3", 1);
        assertOneCompleteFolder(dir, "v3");
    }

    @Test
    void twoThreadsSavingToOneFolderBothFinish() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("threads")).resolve("adapter");
        ExecutorService pool = Executors.newFixedThreadPool(2);
        List<Future<?>> fs = new ArrayList<>();
        for (String id : new String[]{"x", "y"}) {
            fs.add(pool.submit(() -> {
                save(dir, id, 40);
                return null;
            }));
        }
        for (Future<?> f : fs) {
            f.get(60, TimeUnit.SECONDS);
        }
        pool.shutdown();
        assertOneCompleteFolder(dir, "x", "y");
    }

    @Test
    void twoProcessesSavingToOneFolderBothFinish() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("procs")).resolve("adapter");
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<Process> ps = new ArrayList<>();
        for (String id : new String[]{"p", "q"}) {
            ps.add(new ProcessBuilder(java, "-Xmx128m", "-cp", cp, ConcurrentSaveTest.class.getName(), dir.toString(), id,
                    "60").redirectErrorStream(true).redirectOutput(tmp.resolve(id + ".log").toFile()).start());
        }
        for (Process p : ps) {
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "writer finishes");
            assertEquals(0, p.exitValue(), Files.readString(tmp.resolve((ps.indexOf(p) == 0 ? "p" : "q") + ".log")));
        }
        assertOneCompleteFolder(dir, "p", "q");
    }
}
