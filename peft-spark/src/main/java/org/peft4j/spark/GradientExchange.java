package org.peft4j.spark;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;
import java.util.List;

/**
 * The wire format of one exchange: a short text header and the float32 values of a list of
 * tensors, concatenated in a fixed order (little-endian, Base64 because
 * {@code BarrierTaskContext.allGather} carries strings). Every receiver sums the messages in
 * task order 0..N-1 with the same code, so all replicas get bit-identical sums.
 */
final class GradientExchange {
    private static final char SEP = '|';

    private GradientExchange() {
    }

    /** Values of {@code arrays} (null = zeros of {@code shapes[i]}) as one float vector. */
    static float[] flatten(List<INDArray> arrays, List<long[]> shapes) {
        long n = 0;
        for (long[] s : shapes) {
            n += length(s);
        }
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("cannot exchange more than 2^31 values in one message: " + n);
        }
        float[] out = new float[(int) n];
        int off = 0;
        for (int i = 0; i < shapes.size(); i++) {
            int len = (int) length(shapes.get(i));
            INDArray a = arrays.get(i);
            if (a != null) {
                float[] v = a.dup('c').castTo(DataType.FLOAT).data().asFloat();
                System.arraycopy(v, 0, out, off, len);
            }
            off += len;
        }
        return out;
    }

    /** Splits a float vector back into arrays of {@code shapes}. */
    static INDArray[] unflatten(float[] flat, List<long[]> shapes) {
        INDArray[] out = new INDArray[shapes.size()];
        int off = 0;
        for (int i = 0; i < out.length; i++) {
            long[] s = shapes.get(i);
            int len = (int) length(s);
            float[] part = new float[len];
            System.arraycopy(flat, off, part, 0, len);
            out[i] = Nd4j.create(part, s, 'c');
            off += len;
        }
        if (off != flat.length) {
            throw new IllegalArgumentException("exchanged vector has " + flat.length + " values, the tensors need " + off);
        }
        return out;
    }

    static String encode(String header, float[] values) {
        if (header.indexOf(SEP) >= 0) {
            throw new IllegalArgumentException("header must not contain '" + SEP + "'");
        }
        ByteBuffer b = ByteBuffer.allocate(values.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return header + SEP + Base64.getEncoder().encodeToString(b.array());
    }

    static String header(String message) {
        int i = message.indexOf(SEP);
        if (i < 0) {
            throw new IllegalArgumentException("malformed exchange message (no header separator)");
        }
        return message.substring(0, i);
    }

    static float[] values(String message) {
        int i = message.indexOf(SEP);
        byte[] bytes = Base64.getDecoder().decode(message.substring(i + 1));
        float[] out = new float[bytes.length / Float.BYTES];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    /** {@code Σ values(messages[k])} for k = 0..N-1, in that order, each vector of length {@code n}. */
    static float[] sum(String[] messages, int n) {
        float[] acc = new float[n];
        for (int k = 0; k < messages.length; k++) {
            float[] v = values(messages[k]);
            if (v.length != n) {
                throw new IllegalStateException("task " + k + " sent " + v.length + " values, expected " + n
                        + " (replicas hold different adapters)");
            }
            for (int i = 0; i < n; i++) {
                acc[i] += v[i];
            }
        }
        return acc;
    }

    private static long length(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }
}
