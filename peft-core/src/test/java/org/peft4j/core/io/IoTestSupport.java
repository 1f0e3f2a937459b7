package org.peft4j.core.io;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** Helpers shared by the io tests. */
final class IoTestSupport {
    private IoTestSupport() {
    }

    /** The raw bytes of {@code a} in row-major order (via a c-order copy when it is a view). */
    static byte[] rawBytes(INDArray a) {
        INDArray c = NativeBuffers.isContiguousRowMajor(a) ? a : a.dup('c');
        int n = (int) (c.length() * c.dataType().width());
        byte[] out = new byte[n];
        if (n > 0) {
            NativeBuffers.bytes(c, 0, n).get(out);
        }
        return out;
    }

    /** Element {@code i} (row-major) of a FLOAT array as raw float bits (keeps NaN payloads). */
    static int[] floatBits(INDArray a) {
        ByteBuffer b = ByteBuffer.wrap(rawBytes(a)).order(ByteOrder.nativeOrder());
        int[] out = new int[b.remaining() / 4];
        for (int i = 0; i < out.length; i++) {
            out[i] = b.getInt();
        }
        return out;
    }

    static byte[] resource(String name) throws IOException {
        try (InputStream in = IoTestSupport.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IllegalStateException("missing test resource " + name);
            }
            return in.readAllBytes();
        }
    }

    /** A safetensors file from a header string and {@code dataLen} data bytes (0, 1, 2, ...). */
    static byte[] craft(String headerJson, int dataLen) {
        byte[] h = headerJson.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataLen).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        for (int i = 0; i < dataLen; i++) {
            b.put((byte) i);
        }
        return b.array();
    }

    static List<String> listNames(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            List<String> names = new ArrayList<>();
            s.forEach(p -> names.add(p.getFileName().toString()));
            names.sort(null);
            return names;
        }
    }
}
