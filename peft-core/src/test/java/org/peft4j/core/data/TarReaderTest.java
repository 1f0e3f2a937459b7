package org.peft4j.core.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.zip.GZIPInputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TarReaderTest {
    private static final String LONG = "package/" + "d".repeat(60) + "/" + "e".repeat(60) + "/long.json";

    private static String entry(InputStream tar, String name) throws IOException {
        return new String(TarReader.openEntry(tar, name, "test.tar").readAllBytes(), StandardCharsets.UTF_8);
    }

    /** Fixtures written by GNU tar 1.34 in its three formats (see the test resources folder). */
    @ParameterizedTest
    @ValueSource(strings = {"tar-pax.tgz", "tar-gnu.tgz", "tar-ustar.tgz"})
    void readsArchivesWrittenByGnuTar(String fixture) throws IOException {
        for (String[] want : new String[][] {
                {"package/a.txt", "first\n"},
                {"package/reviews.json", "[{\"t\":\"x<br />y\",\"s\":1}]\n"},
                {LONG, "{\"hello\": \"pax\"}\n"}}) {
            try (InputStream in = new GZIPInputStream(TarReaderTest.class.getResourceAsStream(fixture))) {
                assertEquals(want[1], entry(in, want[0]), fixture + " " + want[0]);
            }
        }
    }

    @Test
    void prefixPaxAndGnuLongNamesFromTestWriter() throws IOException {
        byte[] tar = new TestTar()
                .dir("package/")
                .file("package/skip.bin", new byte[700])
                .file("package/deep", "x.txt", "prefixed".getBytes(StandardCharsets.UTF_8))
                .paxPath("package/" + "p".repeat(120))
                .file("package/short-pax", "via pax".getBytes(StandardCharsets.UTF_8))
                .gnuLongName("package/" + "g".repeat(130))
                .file("package/short-gnu", "via gnu".getBytes(StandardCharsets.UTF_8))
                .file("package/last", new byte[0])
                .tarBytes();
        assertEquals("prefixed", entry(new ByteArrayInputStream(tar), "package/deep/x.txt"));
        assertEquals("via pax", entry(new ByteArrayInputStream(tar), "package/" + "p".repeat(120)));
        assertEquals("via gnu", entry(new ByteArrayInputStream(tar), "package/" + "g".repeat(130)));
        assertEquals("", entry(new ByteArrayInputStream(tar), "package/last"));
        // The long name applies to one entry only.
        assertThrows(IllegalArgumentException.class, () -> entry(new ByteArrayInputStream(tar), "package/short-pax"));
    }

    @Test
    void entryStreamStopsAtEntryEnd() throws IOException {
        byte[] a = "0123456789".getBytes(StandardCharsets.US_ASCII);
        byte[] tar = new TestTar().file("a", a).file("b", "next".getBytes(StandardCharsets.US_ASCII)).tarBytes();
        InputStream in = TarReader.openEntry(new ByteArrayInputStream(tar), "a", "t");
        byte[] buf = new byte[100];
        assertEquals(10, in.readNBytes(buf, 0, 100));
        assertEquals(-1, in.read());
        assertEquals(-1, in.read(buf, 0, 5));
        assertArrayEquals(a, java.util.Arrays.copyOf(buf, 10));
    }

    @Test
    void missingEntryNamesArchiveAndEntry() {
        byte[] tar = new TestTar().file("package/a.txt", new byte[3]).tarBytes();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TarReader.openEntry(new ByteArrayInputStream(tar), "package/reviews.json", "pkg.tgz"));
        assertTrue(e.getMessage().contains("pkg.tgz") && e.getMessage().contains("package/reviews.json"), e.getMessage());
    }

    @Test
    void corruptChecksumIsDetected() {
        byte[] tar = new TestTar().file("package/a.txt", new byte[3]).tarBytes();
        tar[10] ^= 0x01; // flip a bit in the name field
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TarReader.openEntry(new ByteArrayInputStream(tar), "package/a.txt", "pkg.tgz"));
        assertTrue(e.getMessage().contains("pkg.tgz") && e.getMessage().contains("checksum"), e.getMessage());
    }

    @Test
    void truncatedArchiveIsReported() {
        byte[] full = new TestTar().file("package/a.txt", new byte[2000]).tarBytes();
        byte[] cut = java.util.Arrays.copyOf(full, 300);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TarReader.openEntry(new ByteArrayInputStream(cut), "package/b.txt", "pkg.tgz"));
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    }
}
