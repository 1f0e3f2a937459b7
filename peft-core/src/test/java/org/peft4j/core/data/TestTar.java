package org.peft4j.core.data;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPOutputStream;

/** Writes small tar archives for tests: POSIX ustar headers, optional pax / GNU long names. */
final class TestTar {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    /** A regular file; {@code prefix} (may be empty) goes to the ustar prefix field. */
    TestTar file(String prefix, String name, byte[] data) {
        header(prefix, name, '0', data.length, true);
        body(data);
        return this;
    }

    TestTar file(String name, byte[] data) {
        return file("", name, data);
    }

    TestTar dir(String name) {
        header("", name, '5', 0, true);
        return this;
    }

    /** A pax extended header whose {@code path} record names the next entry. */
    TestTar paxPath(String path) {
        String rec = " path=" + path + "\n";
        int len = rec.getBytes(StandardCharsets.UTF_8).length;
        // The length prefix counts its own digits.
        int total = len + String.valueOf(len).length();
        if (String.valueOf(total).length() != String.valueOf(len).length()) {
            total++;
        }
        byte[] data = (total + rec).getBytes(StandardCharsets.UTF_8);
        header("", "PaxHeader/x", 'x', data.length, true);
        body(data);
        return this;
    }

    /** A GNU long-name entry ('L') naming the next entry. */
    TestTar gnuLongName(String name) {
        byte[] data = (name + "\0").getBytes(StandardCharsets.UTF_8);
        header("", "././@LongLink", 'L', data.length, false);
        body(data);
        return this;
    }

    byte[] tarBytes() {
        ByteArrayOutputStream copy = new ByteArrayOutputStream();
        copy.writeBytes(out.toByteArray());
        copy.writeBytes(new byte[1024]); // two zero end-of-archive blocks
        return copy.toByteArray();
    }

    Path writeTgz(Path file) throws IOException {
        try (OutputStream os = new GZIPOutputStream(Files.newOutputStream(file))) {
            os.write(tarBytes());
        }
        return file;
    }

    /** Raw header bytes (for corrupting in tests). */
    ByteArrayOutputStream raw() {
        return out;
    }

    private void header(String prefix, String name, char type, long size, boolean posix) {
        byte[] h = new byte[512];
        put(h, 0, 100, name);
        put(h, 100, 8, "0000644");
        put(h, 108, 8, "0000000");
        put(h, 116, 8, "0000000");
        put(h, 124, 12, String.format("%011o", size));
        put(h, 136, 12, String.format("%011o", 0));
        h[156] = (byte) type;
        if (posix) {
            put(h, 257, 6, "ustar\0");
            put(h, 263, 2, "00");
            put(h, 345, 155, prefix);
        } else {
            put(h, 257, 8, "ustar  \0");
        }
        for (int i = 148; i < 156; i++) {
            h[i] = ' ';
        }
        long sum = 0;
        for (byte b : h) {
            sum += b & 0xff;
        }
        put(h, 148, 8, String.format("%06o\0 ", sum));
        out.writeBytes(h);
    }

    private void body(byte[] data) {
        out.writeBytes(data);
        int pad = (512 - data.length % 512) % 512;
        out.writeBytes(new byte[pad]);
    }

    private static void put(byte[] h, int off, int len, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        if (b.length > len) {
            throw new IllegalArgumentException("field too long: " + s);
        }
        System.arraycopy(b, 0, h, off, b.length);
    }
}
