package org.peft4j.benchmarks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Resident memory of this process from {@code /proc/self/status}: {@code VmRSS} (now) and
 * {@code VmHWM} (peak since start), which cover the Java heap, ND4J's off-heap buffers and the
 * native libraries alike.
 */
public record ProcMem(long rssKb, long hwmKb) {
    public static ProcMem read() {
        long rss = -1;
        long hwm = -1;
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    rss = kb(line);
                } else if (line.startsWith("VmHWM:")) {
                    hwm = kb(line);
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc/self/status", e);
        }
        return new ProcMem(rss, hwm);
    }

    private static long kb(String line) {
        String[] p = line.trim().split("\\s+");
        return Long.parseLong(p[1]);
    }

    public double rssMb() {
        return rssKb / 1024.0;
    }

    public double hwmMb() {
        return hwmKb / 1024.0;
    }
}
