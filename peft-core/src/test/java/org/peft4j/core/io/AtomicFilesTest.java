package org.peft4j.core.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AtomicFilesTest {
    @TempDir
    Path tmp;

    @Test
    void writeCreatesAndReplaces() throws IOException {
        Path f = tmp.resolve("sub/dir/a.txt");
        AtomicFiles.writeString(f, "first");
        assertEquals("first", Files.readString(f));
        AtomicFiles.write(f, out -> {
            out.write("sec".getBytes(StandardCharsets.UTF_8));
            out.close(); // closing only flushes; the file is still completed
        });
        assertEquals("sec", Files.readString(f));
        AtomicFiles.writeString(f, "h\u00e9llo \u2713");
        assertEquals("h\u00e9llo \u2713", Files.readString(f, StandardCharsets.UTF_8));
        assertEquals(List.of("a.txt"), IoTestSupport.listNames(f.getParent()));
    }

    @Test
    void failingWriterLeavesOldContentAndNoTemporaryFile() throws IOException {
        Path f = tmp.resolve("keep.txt");
        AtomicFiles.writeString(f, "old content");
        IOException io = new IOException("disk full (simulated)");
        IOException thrown = assertThrows(IOException.class, () -> AtomicFiles.write(f, out -> {
            out.write("partial new con".getBytes(StandardCharsets.UTF_8));
            out.flush();
            throw io;
        }));
        assertSame(io, thrown);
        assertEquals("old content", Files.readString(f));
        assertEquals(List.of("keep.txt"), IoTestSupport.listNames(tmp));

        RuntimeException rt = assertThrows(RuntimeException.class, () -> AtomicFiles.write(f, out -> {
            out.write(new byte[100_000]);
            throw new IllegalStateException("bug in writer");
        }));
        assertEquals("bug in writer", rt.getMessage());
        assertEquals("old content", Files.readString(f));
        assertEquals(List.of("keep.txt"), IoTestSupport.listNames(tmp));
    }

    @Test
    void failingWriterOnNewFileLeavesNothing() throws IOException {
        Path f = tmp.resolve("new.txt");
        assertThrows(UncheckedIOException.class, () -> AtomicFiles.write(f, out -> {
            throw new UncheckedIOException(new IOException("x"));
        }));
        assertFalse(Files.exists(f));
        assertEquals(List.of(), IoTestSupport.listNames(tmp));
    }

    @Test
    void writeRejectsADirectoryTarget() throws IOException {
        Path d = Files.createDirectory(tmp.resolve("d"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AtomicFiles.writeString(d, "x"));
        assertTrue(e.getMessage().contains(d.toString()), e.getMessage());
    }

    @Test
    void replaceDirectoryCreatesAndSwaps() throws IOException {
        Path dir = tmp.resolve("ckpt");
        AtomicFiles.replaceDirectory(dir, t -> {
            Files.writeString(t.resolve("a.txt"), "A1");
            Files.createDirectories(t.resolve("nested"));
            Files.writeString(t.resolve("nested/b.txt"), "B1");
        });
        assertEquals("A1", Files.readString(dir.resolve("a.txt")));
        assertEquals("B1", Files.readString(dir.resolve("nested/b.txt")));

        AtomicFiles.replaceDirectory(dir, t -> {
            assertTrue(IoTestSupport.listNames(t).isEmpty(), "temp folder starts empty");
            Files.writeString(t.resolve("c.txt"), "C2");
        });
        assertEquals(List.of("c.txt"), IoTestSupport.listNames(dir), "old files are gone, not merged");
        assertEquals("C2", Files.readString(dir.resolve("c.txt")));
        assertEquals(List.of("ckpt"), IoTestSupport.listNames(tmp), "no temp or old folders left");
    }

    @Test
    void failureWhileFillingLeavesThePreviousFolderIntact() throws IOException {
        Path dir = tmp.resolve("ckpt");
        AtomicFiles.replaceDirectory(dir, t -> Files.writeString(t.resolve("model.bin"), "v1"));
        IOException boom = new IOException("simulated crash while writing");
        IOException thrown = assertThrows(IOException.class, () -> AtomicFiles.replaceDirectory(dir, t -> {
            Files.writeString(t.resolve("model.bin"), "v2 partial");
            Files.createDirectories(t.resolve("x/y"));
            throw boom;
        }));
        assertSame(boom, thrown);
        assertEquals(List.of("model.bin"), IoTestSupport.listNames(dir));
        assertEquals("v1", Files.readString(dir.resolve("model.bin")));
        assertEquals(List.of("ckpt"), IoTestSupport.listNames(tmp));

        // Same for a folder that did not exist before.
        Path fresh = tmp.resolve("fresh");
        assertThrows(IllegalStateException.class, () -> AtomicFiles.replaceDirectory(fresh, t -> {
            Files.writeString(t.resolve("f"), "x");
            throw new IllegalStateException("bug");
        }));
        assertFalse(Files.exists(fresh));
        assertEquals(List.of("ckpt"), IoTestSupport.listNames(tmp));
    }

    @Test
    void replaceDirectoryRejectsARegularFile() throws IOException {
        Path f = tmp.resolve("file");
        Files.writeString(f, "x");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> AtomicFiles.replaceDirectory(f, t -> { }));
        assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
        assertEquals("x", Files.readString(f));
    }

    @Test
    void deleteRecursively() throws IOException {
        Path d = tmp.resolve("t");
        Files.createDirectories(d.resolve("a/b"));
        Files.writeString(d.resolve("a/b/c"), "c");
        AtomicFiles.deleteRecursively(d);
        assertFalse(Files.exists(d));
        AtomicFiles.deleteRecursively(d); // missing: no error
    }
}
