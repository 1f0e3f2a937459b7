package org.peft4j.core.io;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedOutputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.SecureRandom;
import java.util.Objects;

/**
 * Writes files and whole folders so that a reader sees either the old content or the complete
 * new content, never a half-written file, even if the writer throws or the process dies.
 *
 * <p>Files: the content goes to a hidden temporary file in the target's own folder (same file
 * system, so the rename is atomic), is flushed to disk, then renamed over the target with
 * {@code ATOMIC_MOVE}. On any failure the temporary file is deleted and the target is untouched.
 *
 * <p>Folders ({@link #replaceDirectory}): the new folder is filled as a hidden sibling, then
 * swapped in by two renames (old aside, new in) and the old one is deleted. A failure while
 * filling leaves the previous folder exactly as it was. POSIX has no portable atomic exchange of
 * two directories from Java, so there is a window of two renames during which the folder is
 * absent; a crash inside it leaves the previous content in {@code .<name>.old-<random>} next to it.
 *
 * <p>Temporary names are created with {@link Files#createFile} / {@link Files#createDirectory}
 * (not {@code createTempFile}, which would give the final file owner-only permissions), so the
 * result gets the same permissions as an ordinary write under the process umask.
 */
public final class AtomicFiles {
    private static final Logger LOG = LoggerFactory.getLogger(AtomicFiles.class);
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final int STREAM_BUFFER = 1 << 16;

    private AtomicFiles() {
    }

    /**
     * Writes {@code target} atomically from an output stream. The stream is buffered; the writer
     * need not (and should not) close it — closing only flushes.
     */
    public static void write(Path target, IOConsumer<OutputStream> writer) throws IOException {
        Objects.requireNonNull(writer, "writer");
        writeChannel(target, channel -> {
            OutputStream raw = Channels.newOutputStream(channel);
            // The writer may close the stream; keep the channel open so we can flush and fsync it.
            OutputStream guarded = new FilterOutputStream(new BufferedOutputStream(raw, STREAM_BUFFER)) {
                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    out.write(b, off, len);
                }

                @Override
                public void close() throws IOException {
                    flush();
                }
            };
            writer.accept(guarded);
            guarded.flush();
        });
    }

    /**
     * Writes {@code target} atomically through a {@link FileChannel} opened for writing on a
     * temporary file (positioned at 0). Use this to write large native buffers without copying
     * them onto the Java heap.
     */
    public static void writeChannel(Path target, IOConsumer<FileChannel> writer) throws IOException {
        Objects.requireNonNull(writer, "writer");
        Path abs = target.toAbsolutePath().normalize();
        Path parent = abs.getParent();
        if (parent == null) {
            throw new IllegalArgumentException("cannot write to " + target + ": it has no parent folder");
        }
        if (Files.isDirectory(abs)) {
            throw new IllegalArgumentException("cannot write file " + target + ": it is an existing directory");
        }
        Files.createDirectories(parent);
        Path tmp = createUniqueFile(parent, "." + abs.getFileName() + ".", ".tmp");
        boolean done = false;
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                writer.accept(ch);
                // Durability before visibility: the rename must not expose a file whose data is
                // still only in the page cache if the machine crashes right after.
                ch.force(true);
            }
            move(tmp, abs);
            done = true;
        } finally {
            if (!done) {
                deleteQuietly(tmp);
            }
        }
        fsyncDirectory(parent);
    }

    /** Writes {@code bytes} to {@code target} atomically. */
    public static void writeBytes(Path target, byte[] bytes) throws IOException {
        Objects.requireNonNull(bytes, "bytes");
        write(target, out -> out.write(bytes));
    }

    /** Writes {@code text} to {@code target} atomically, UTF-8 encoded. */
    public static void writeString(Path target, String text) throws IOException {
        Objects.requireNonNull(text, "text");
        writeBytes(target, text.getBytes(StandardCharsets.UTF_8));
    }

    /**
     * Replaces the folder {@code dir} by one that {@code fillTempDir} fills: the callback gets a
     * fresh, empty sibling folder, and only if it returns normally is that folder swapped in
     * for {@code dir} (which need not exist yet). If the callback throws, the temporary folder is
     * deleted, {@code dir} is untouched, and the exception propagates.
     */
    public static void replaceDirectory(Path dir, IOConsumer<Path> fillTempDir) throws IOException {
        Objects.requireNonNull(fillTempDir, "fillTempDir");
        Path abs = dir.toAbsolutePath().normalize();
        Path parent = abs.getParent();
        if (parent == null) {
            throw new IllegalArgumentException("cannot replace " + dir + ": it has no parent folder");
        }
        if (Files.exists(abs, LinkOption.NOFOLLOW_LINKS) && !Files.isDirectory(abs, LinkOption.NOFOLLOW_LINKS)) {
            throw new IllegalArgumentException("cannot replace " + dir + ": it exists and is not a directory");
        }
        Files.createDirectories(parent);
        String name = abs.getFileName().toString();
        // One writer at a time per folder, across threads and processes: a second save waits for
        // the first and then replaces its (complete) result. The OS releases the lock of a killed
        // process.
        withLock(abs, () -> {
            recoverLocked(abs);
            replaceLocked(abs, parent, name, fillTempDir);
        });
    }

    private interface IORunnable {
        void run() throws IOException;
    }

    /** Runs {@code body} holding folder {@code abs}'s JVM lock and its file lock (shared by processes). */
    private static void withLock(Path abs, IORunnable body) throws IOException {
        java.util.concurrent.locks.ReentrantLock local = LOCKS.computeIfAbsent(abs, k -> new java.util.concurrent.locks.ReentrantLock());
        local.lock();
        try (FileChannel lockFile = FileChannel.open(lockFileOf(abs), StandardOpenOption.CREATE,
                StandardOpenOption.WRITE); java.nio.channels.FileLock ignored = lockFile.lock()) {
            body.run();
        } finally {
            local.unlock();
        }
    }

    /**
     * The lock file of folder {@code abs}: in the system temp folder (named by a hash of the path),
     * so the user's folders get no extra files, and never deleted (deleting a lock file others may
     * wait on would break the exclusion).
     */
    private static Path lockFileOf(Path abs) throws IOException {
        Path locks = Path.of(System.getProperty("java.io.tmpdir"), "peft4j-locks");
        Files.createDirectories(locks);
        try {
            byte[] h = java.security.MessageDigest.getInstance("SHA-256").digest(abs.toString().getBytes(StandardCharsets.UTF_8));
            return locks.resolve(java.util.HexFormat.of().formatHex(h, 0, 16) + ".lock");
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static final java.util.concurrent.ConcurrentHashMap<Path, java.util.concurrent.locks.ReentrantLock> LOCKS =
            new java.util.concurrent.ConcurrentHashMap<>();

    /**
     * Repairs what a process killed inside {@link #replaceDirectory} left behind: if {@code dir}
     * is missing but the previous version was already moved aside ({@code .<name>.old-*}, always
     * complete), that version is put back; unfinished temporary folders ({@code .<name>.tmp-*}) are
     * deleted. Takes the folder's lock, so it never disturbs a save in progress; called by
     * {@link #replaceDirectory} and by readers before loading.
     */
    public static void recover(Path dir) throws IOException {
        Path abs = dir.toAbsolutePath().normalize();
        Path parent = abs.getParent();
        if (parent == null || !Files.isDirectory(parent)) {
            return;
        }
        String name = abs.getFileName().toString();
        // nothing to do (the common case): no lock needed
        try (var entries = Files.newDirectoryStream(parent, "." + name + ".*")) {
            if (!entries.iterator().hasNext()) {
                return;
            }
        }
        withLock(abs, () -> recoverLocked(abs));
    }

    private static void recoverLocked(Path abs) throws IOException {
        Path parent = abs.getParent();
        String name = abs.getFileName().toString();
        java.util.List<Path> olds = new java.util.ArrayList<>();
        java.util.List<Path> tmps = new java.util.ArrayList<>();
        try (var entries = Files.newDirectoryStream(parent, "." + name + ".*")) {
            for (Path p : entries) {
                String n = p.getFileName().toString();
                if (n.startsWith("." + name + ".old-")) {
                    olds.add(p);
                } else if (n.startsWith("." + name + ".tmp-")) {
                    tmps.add(p);
                }
            }
        }
        if (!Files.exists(abs, LinkOption.NOFOLLOW_LINKS) && !olds.isEmpty()) {
            Path newest = olds.get(0);
            for (Path p : olds) {
                if (Files.getLastModifiedTime(p).compareTo(Files.getLastModifiedTime(newest)) > 0) {
                    newest = p;
                }
            }
            LOG.warn("{} is missing after an interrupted save; restoring the previous version from {}", abs, newest);
            move(newest, abs);
            fsyncDirectory(parent);
            olds.remove(newest);
        }
        if (Files.exists(abs, LinkOption.NOFOLLOW_LINKS)) {
            for (Path p : olds) {
                deleteQuietly(p);
            }
        }
        // under the lock no writer is filling one, so every temporary folder is a killed save's
        for (Path p : tmps) {
            deleteQuietly(p);
        }
    }

    private static void replaceLocked(Path abs, Path parent, String name, IOConsumer<Path> fillTempDir) throws IOException {
        Path tmp = createUniqueDirectory(parent, "." + name + ".tmp-");
        try {
            fillTempDir.accept(tmp);
        } catch (IOException | RuntimeException | Error e) {
            deleteQuietly(tmp);
            throw e;
        }
        if (!Files.exists(abs, LinkOption.NOFOLLOW_LINKS)) {
            try {
                move(tmp, abs);
            } catch (IOException | RuntimeException e) {
                deleteQuietly(tmp);
                throw e;
            }
            fsyncDirectory(parent);
            return;
        }
        // Reserve a unique name for the old folder, then rename the old folder onto it.
        Path old = createUniqueDirectory(parent, "." + name + ".old-");
        Files.delete(old);
        try {
            move(abs, old);
        } catch (IOException | RuntimeException e) {
            deleteQuietly(tmp);
            throw e;
        }
        try {
            move(tmp, abs);
        } catch (IOException | RuntimeException e) {
            // Put the previous folder back so the caller is left where it started.
            try {
                move(old, abs);
            } catch (IOException restore) {
                e.addSuppressed(restore);
                LOG.error("could not restore {} from {}; the previous content is in {}", abs, old, old, restore);
            }
            deleteQuietly(tmp);
            throw e;
        }
        fsyncDirectory(parent);
        try {
            deleteRecursively(old);
        } catch (IOException e) {
            // The new content is in place; a leftover hidden folder is only wasted space.
            LOG.warn("replaced {} but could not delete the previous content in {}: {}", abs, old, e.toString());
        }
    }

    /** Deletes a file or a folder tree; a missing path is not an error. Symbolic links are not followed. */
    public static void deleteRecursively(Path path) throws IOException {
        if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        Files.walkFileTree(path, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                Files.delete(file);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path d, IOException exc) throws IOException {
                if (exc != null) {
                    throw exc;
                }
                Files.delete(d);
                return FileVisitResult.CONTINUE;
            }
        });
    }

    private static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            // Same folder, so this only happens on exotic file systems; say so instead of
            // silently degrading to a copy.
            throw new IOException("the file system of " + to.getParent() + " does not support atomic renames", e);
        }
    }

    private static Path createUniqueFile(Path parent, String prefix, String suffix) throws IOException {
        for (int attempt = 0; ; attempt++) {
            Path p = parent.resolve(prefix + Long.toUnsignedString(RANDOM.nextLong(), 36) + suffix);
            try {
                return Files.createFile(p);
            } catch (FileAlreadyExistsException e) {
                if (attempt >= 100) {
                    throw e;
                }
            }
        }
    }

    private static Path createUniqueDirectory(Path parent, String prefix) throws IOException {
        for (int attempt = 0; ; attempt++) {
            Path p = parent.resolve(prefix + Long.toUnsignedString(RANDOM.nextLong(), 36));
            try {
                return Files.createDirectory(p);
            } catch (FileAlreadyExistsException e) {
                if (attempt >= 100) {
                    throw e;
                }
            }
        }
    }

    private static void deleteQuietly(Path p) {
        try {
            deleteRecursively(p);
        } catch (IOException e) {
            LOG.warn("could not delete temporary {}: {}", p, e.toString());
        }
    }

    /** Makes a rename durable (Linux: fsync on the folder). Best effort: not all systems allow it. */
    private static void fsyncDirectory(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | UnsupportedOperationException e) {
            LOG.debug("fsync of folder {} not possible: {}", dir, e.toString());
        }
    }
}
