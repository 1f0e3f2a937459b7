package org.peft4j.core.data;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;

/**
 * Finds one file in a tar stream (POSIX ustar, with pax and GNU long-name headers), enough to
 * read an npm tarball without extracting it. The JDK has gzip but no tar reader, and one entry
 * of a well-known archive does not justify another dependency.
 */
final class TarReader {
    private static final int BLOCK = 512;

    private TarReader() {
    }

    /**
     * Advances {@code tar} (already un-gzipped) to the regular-file entry {@code name} and returns
     * a stream of exactly its bytes. Closing the returned stream does not close {@code tar}.
     *
     * @throws IllegalArgumentException if the archive is corrupt or has no such entry
     *                                  (the message names {@code source})
     */
    static InputStream openEntry(InputStream tar, String name, String source) throws IOException {
        InputStream[] found = new InputStream[1];
        scan(tar, source, (entryName, content) -> {
            if (entryName.equals(name)) {
                found[0] = content;
                return true;
            }
            return false;
        });
        if (found[0] == null) {
            throw new IllegalArgumentException(source + ": the archive has no file '" + name + "'");
        }
        return found[0];
    }

    /** Sees one regular-file entry; returns true to stop the scan (the stream then stays at the entry's bytes). */
    @FunctionalInterface
    interface EntryVisitor {
        boolean visit(String name, InputStream content) throws IOException;
    }

    /**
     * Walks the regular-file entries of {@code tar} (already un-gzipped) in archive order; whatever
     * a visitor leaves unread of an entry is skipped.
     *
     * @throws IllegalArgumentException if the archive is corrupt (the message names {@code source})
     */
    static void scan(InputStream tar, String source, EntryVisitor visitor) throws IOException {
        byte[] header = new byte[BLOCK];
        String nextName = null; // from a pax 'path' record or a GNU 'L' entry
        long offset = 0;
        while (true) {
            int n = tar.readNBytes(header, 0, BLOCK);
            if (n == 0) {
                break; // some writers omit the two zero end blocks
            }
            if (n < BLOCK) {
                throw new IllegalArgumentException(source + ": truncated tar header at byte " + offset);
            }
            offset += BLOCK;
            if (isZero(header)) {
                break;
            }
            verifyChecksum(header, source, offset - BLOCK);
            char type = (char) header[156];
            long size = parseSize(header, source, offset - BLOCK);
            long padded = (size + BLOCK - 1) / BLOCK * BLOCK;
            String entryName = nextName != null ? nextName : headerName(header);
            nextName = null;
            if (type == 'x' || type == 'L') {
                if (size > (1 << 20)) {
                    throw new IllegalArgumentException(source + ": oversized tar extended header (" + size + " bytes)");
                }
                byte[] data = readExactly(tar, (int) size, source);
                tar.skipNBytes(padded - size);
                offset += padded;
                nextName = type == 'x' ? paxPath(data, source) : cString(data, 0, data.length);
                continue;
            }
            boolean regular = type == '0' || type == '\0' || type == '7';
            if (regular) {
                Bounded content = new Bounded(tar, size);
                if (visitor.visit(entryName, content)) {
                    return;
                }
                skip(tar, content.remaining + (padded - size), source);
            } else {
                skip(tar, padded, source);
            }
            offset += padded;
        }
    }

    private static boolean isZero(byte[] b) {
        for (byte x : b) {
            if (x != 0) {
                return false;
            }
        }
        return true;
    }

    private static void verifyChecksum(byte[] h, String source, long at) {
        long stored = parseOctal(h, 148, 8, source, at, "checksum");
        long unsigned = 0;
        long signed = 0;
        for (int i = 0; i < BLOCK; i++) {
            // The checksum field itself counts as eight spaces.
            int b = (i >= 148 && i < 156) ? ' ' : h[i];
            unsigned += b & 0xff;
            signed += (byte) b;
        }
        if (stored != unsigned && stored != signed) {
            throw new IllegalArgumentException(source + ": corrupt tar header at byte " + at
                    + " (checksum " + stored + ", computed " + unsigned + ")");
        }
    }

    private static long parseSize(byte[] h, String source, long at) {
        if ((h[124] & 0x80) != 0) {
            // GNU base-256: big-endian two's complement in the remaining bits of the 12-byte field.
            long v = h[124] & 0x7f;
            for (int i = 125; i < 136; i++) {
                v = (v << 8) | (h[i] & 0xff);
            }
            return v;
        }
        return parseOctal(h, 124, 12, source, at, "size");
    }

    private static long parseOctal(byte[] h, int off, int len, String source, long at, String what) {
        long v = 0;
        boolean any = false;
        for (int i = off; i < off + len; i++) {
            int c = h[i];
            if (c == 0 || c == ' ') {
                if (any) {
                    break;
                }
                continue;
            }
            if (c < '0' || c > '7') {
                throw new IllegalArgumentException(source + ": corrupt tar header at byte " + at + " (bad " + what + " field)");
            }
            v = v * 8 + (c - '0');
            any = true;
        }
        return v;
    }

    private static String headerName(byte[] h) {
        String name = cString(h, 0, 100);
        // POSIX ustar ("ustar\0") splits long paths into prefix (345..500) + name; GNU ("ustar ")
        // stores other data there.
        boolean posix = h[257] == 'u' && h[258] == 's' && h[259] == 't' && h[260] == 'a' && h[261] == 'r' && h[262] == 0;
        if (posix) {
            String prefix = cString(h, 345, 155);
            if (!prefix.isEmpty()) {
                return prefix + "/" + name;
            }
        }
        return name;
    }

    private static String cString(byte[] b, int off, int len) {
        int end = off;
        while (end < off + len && b[end] != 0) {
            end++;
        }
        return new String(b, off, end - off, StandardCharsets.UTF_8);
    }

    /** Pax records are {@code "<len> <key>=<value>\n"}, len counting the whole record in bytes. */
    private static String paxPath(byte[] data, String source) {
        String path = null;
        int pos = 0;
        while (pos < data.length) {
            int sp = pos;
            while (sp < data.length && data[sp] != ' ') {
                sp++;
            }
            int len;
            try {
                len = Integer.parseInt(new String(data, pos, sp - pos, StandardCharsets.US_ASCII));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(source + ": corrupt pax header record", e);
            }
            if (len <= 0 || pos + len > data.length) {
                throw new IllegalArgumentException(source + ": corrupt pax header record length " + len);
            }
            String rec = new String(data, sp + 1, pos + len - sp - 2, StandardCharsets.UTF_8);
            int eq = rec.indexOf('=');
            if (eq > 0 && rec.substring(0, eq).equals("path")) {
                path = rec.substring(eq + 1);
            }
            pos += len;
        }
        return path;
    }

    private static byte[] readExactly(InputStream in, int n, String source) throws IOException {
        byte[] b = in.readNBytes(n);
        if (b.length != n) {
            throw new IllegalArgumentException(source + ": truncated tar entry");
        }
        return b;
    }

    private static void skip(InputStream in, long n, String source) throws IOException {
        try {
            in.skipNBytes(n);
        } catch (EOFException e) {
            throw new IllegalArgumentException(source + ": truncated tar entry", e);
        }
    }

    /** The bytes of one entry; never reads past it and leaves the underlying stream open. */
    private static final class Bounded extends InputStream {
        private final InputStream in;
        private long remaining;

        Bounded(InputStream in, long size) {
            this.in = in;
            this.remaining = size;
        }

        @Override
        public int read() throws IOException {
            if (remaining <= 0) {
                return -1;
            }
            int b = in.read();
            if (b < 0) {
                throw new EOFException("tar entry truncated: " + remaining + " bytes missing");
            }
            remaining--;
            return b;
        }

        @Override
        public int read(byte[] buf, int off, int len) throws IOException {
            if (remaining <= 0) {
                return len == 0 ? 0 : -1;
            }
            int n = in.read(buf, off, (int) Math.min(len, remaining));
            if (n < 0) {
                throw new EOFException("tar entry truncated: " + remaining + " bytes missing");
            }
            remaining -= n;
            return n;
        }

        @Override
        public int available() throws IOException {
            return (int) Math.min(in.available(), remaining);
        }

        @Override
        public void close() {
            // The caller owns the archive stream.
        }
    }
}
