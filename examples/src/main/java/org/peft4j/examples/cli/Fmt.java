package org.peft4j.examples.cli;

import java.util.Locale;

/** Number formatting for the app's output (locale-independent). */
final class Fmt {
    private Fmt() {
    }

    /** {@code 1:05.3} for 65.3 s, {@code 12.4 s} below a minute. */
    static String duration(double seconds) {
        if (seconds < 60) {
            return String.format(Locale.ROOT, "%.1f s", seconds);
        }
        long m = (long) (seconds / 60);
        return String.format(Locale.ROOT, "%d:%04.1f min", m, seconds - 60 * m);
    }

    static String pct(double fraction) {
        return String.format(Locale.ROOT, "%.1f%%", 100 * fraction);
    }

    static String count(long n) {
        return String.format(Locale.ROOT, "%,d", n);
    }

    static double secondsSince(long startNanos) {
        return (System.nanoTime() - startNanos) / 1e9;
    }

    /**
     * CPU seconds this process has used (all threads, including ND4J's native ones), or NaN when
     * the JVM cannot tell. Next to the wall time it shows how much of the machine the run got.
     */
    static double processCpuSeconds() {
        java.lang.management.OperatingSystemMXBean os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
            long ns = sun.getProcessCpuTime();
            return ns < 0 ? Double.NaN : ns / 1e9;
        }
        return Double.NaN;
    }

    /** The first {@code max} characters of a text on one line, with an ellipsis when cut. */
    static String snippet(String text, int max) {
        String one = text.replaceAll("\\s+", " ").strip();
        return one.length() <= max ? one : one.substring(0, max - 1).stripTrailing() + "…";
    }
}
