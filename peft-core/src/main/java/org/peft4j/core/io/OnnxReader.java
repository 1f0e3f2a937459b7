package org.peft4j.core.io;

import onnx.Onnx;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.shade.protobuf.InvalidProtocolBufferException;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Reading ONNX files as data: parsing the protobuf ({@code onnx.Onnx}, shipped inside
 * {@code nd4j-api}) and turning its tensors (initializers, constants) into ND4J arrays. It knows
 * nothing of any model family; mapping a graph's initializers to a family's parameter names is
 * the family's business ({@code model.bert.BertOnnxImport}).
 */
public final class OnnxReader {
    private OnnxReader() {
    }

    /** The bytes of a class-path resource; IllegalArgumentException naming it when absent. */
    public static byte[] readResource(String resource) {
        try (InputStream in = OnnxReader.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalArgumentException("resource " + resource + " is not on the class path");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read resource " + resource, e);
        }
    }

    /** Parses an ONNX model; {@code source} names it in error messages. */
    public static Onnx.ModelProto parse(byte[] bytes, String source) {
        try {
            Onnx.ModelProto m = Onnx.ModelProto.parseFrom(bytes);
            if (!m.hasGraph() || m.getGraph().getInitializerCount() == 0) {
                throw new IllegalArgumentException("ONNX model " + source + " has no graph initializers (not an exported model?)");
            }
            return m;
        } catch (InvalidProtocolBufferException e) {
            throw new IllegalArgumentException("ONNX model " + source + " cannot be parsed: " + e.getMessage(), e);
        }
    }

    /**
     * An ONNX tensor as an ND4J array (FLOAT, FLOAT16 and DOUBLE widen to fp32/fp64; INT32 and
     * INT64 stay integral). Reads {@code raw_data} (little-endian) or the typed repeated fields.
     */
    public static INDArray toArray(Onnx.TensorProto t, String source) {
        if (t.getDataLocation() == Onnx.TensorProto.DataLocation.EXTERNAL) {
            throw new IllegalArgumentException("ONNX model " + source + ": tensor " + t.getName()
                    + " keeps its data in an external file, which is not supported");
        }
        long[] shape = new long[t.getDimsCount()];
        long n = 1;
        for (int i = 0; i < shape.length; i++) {
            shape[i] = t.getDims(i);
            if (shape[i] < 0) {
                throw new IllegalArgumentException("ONNX model " + source + ": tensor " + t.getName() + " has dims "
                        + t.getDimsList() + " (a negative size)");
            }
        }
        // exact, saturating: a wrapped product would hide the true size (and could look small)
        for (long d : shape) {
            try {
                n = Math.multiplyExact(n, d);
            } catch (ArithmeticException e) {
                n = Long.MAX_VALUE;
            }
        }
        for (long d : shape) {
            if (d == 0) {
                n = 0;
            }
        }
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("ONNX model " + source + ": tensor " + t.getName() + " with dims "
                    + t.getDimsList() + " is too large (more than " + Integer.MAX_VALUE + " elements)");
        }
        int count = (int) n;
        boolean raw = !t.getRawData().isEmpty();
        ByteBuffer bb = raw ? t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN) : null;
        int dt = t.getDataType();
        INDArray out;
        switch (dt) {
            case Onnx.TensorProto.DataType.FLOAT_VALUE -> {
                float[] f = new float[count];
                if (raw) {
                    checkBytes(t, bb, 4L * count, source);
                    bb.asFloatBuffer().get(f);
                } else {
                    checkCount(t, t.getFloatDataCount(), count, source);
                    for (int i = 0; i < count; i++) {
                        f[i] = t.getFloatData(i);
                    }
                }
                out = Nd4j.create(f, shape, 'c');
            }
            case Onnx.TensorProto.DataType.DOUBLE_VALUE -> {
                double[] d = new double[count];
                if (raw) {
                    checkBytes(t, bb, 8L * count, source);
                    bb.asDoubleBuffer().get(d);
                } else {
                    checkCount(t, t.getDoubleDataCount(), count, source);
                    for (int i = 0; i < count; i++) {
                        d[i] = t.getDoubleData(i);
                    }
                }
                out = Nd4j.create(d, shape, 'c');
            }
            case Onnx.TensorProto.DataType.FLOAT16_VALUE -> {
                float[] f = new float[count];
                if (raw) {
                    checkBytes(t, bb, 2L * count, source);
                    for (int i = 0; i < count; i++) {
                        f[i] = halfToFloat(bb.getShort(2 * i));
                    }
                } else {
                    // FLOAT16 in int32_data: one half per int, low 16 bits
                    checkCount(t, t.getInt32DataCount(), count, source);
                    for (int i = 0; i < count; i++) {
                        f[i] = halfToFloat((short) t.getInt32Data(i));
                    }
                }
                out = Nd4j.create(f, shape, 'c');
            }
            case Onnx.TensorProto.DataType.INT64_VALUE -> {
                long[] l = new long[count];
                if (raw) {
                    checkBytes(t, bb, 8L * count, source);
                    bb.asLongBuffer().get(l);
                } else {
                    checkCount(t, t.getInt64DataCount(), count, source);
                    for (int i = 0; i < count; i++) {
                        l[i] = t.getInt64Data(i);
                    }
                }
                out = Nd4j.createFromArray(l).reshape(shape);
            }
            case Onnx.TensorProto.DataType.INT32_VALUE -> {
                int[] l = new int[count];
                if (raw) {
                    checkBytes(t, bb, 4L * count, source);
                    bb.asIntBuffer().get(l);
                } else {
                    checkCount(t, t.getInt32DataCount(), count, source);
                    for (int i = 0; i < count; i++) {
                        l[i] = t.getInt32Data(i);
                    }
                }
                out = Nd4j.createFromArray(l).reshape(shape);
            }
            default -> throw new IllegalArgumentException("ONNX model " + source + ": tensor " + t.getName()
                    + " has unsupported data type " + Onnx.TensorProto.DataType.forNumber(dt));
        }
        return out;
    }

    private static void checkBytes(Onnx.TensorProto t, ByteBuffer bb, long expected, String source) {
        if (bb.remaining() != expected) {
            throw new IllegalArgumentException("ONNX model " + source + ": tensor " + t.getName() + " of shape "
                    + t.getDimsList() + " has " + bb.remaining() + " bytes of raw data, expected " + expected);
        }
    }

    private static void checkCount(Onnx.TensorProto t, int found, int expected, String source) {
        if (found != expected) {
            throw new IllegalArgumentException("ONNX model " + source + ": tensor " + t.getName() + " of shape "
                    + t.getDimsList() + " has " + found + " values, expected " + expected);
        }
    }

    /** IEEE 754 binary16 bits → float (Java 17 has no Float.float16ToFloat). */
    static float halfToFloat(short bits) {
        int h = bits & 0xffff;
        int sign = (h & 0x8000) << 16;
        int exp = (h >>> 10) & 0x1f;
        int mant = h & 0x3ff;
        if (exp == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));   // inf / NaN
        }
        if (exp == 0) {
            // zero or subnormal: mant * 2^-24
            float v = mant * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }
}
