package org.peft4j.quant;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Bulk copies between Java arrays and ND4J's off-heap memory (JavaCPP pointers), for the quantized
 * buffers and the dequantization scratch. Arrays made here live outside any workspace: they are
 * saved, cached or kept by a layer.
 */
final class NativeArrays {
    private NativeArrays() {
    }

    /** A new UINT8 array of {@code shape} holding {@code data}. */
    static INDArray uint8(byte[] data, long... shape) {
        return bytesArray(DataType.UINT8, data, shape);
    }

    /** A new INT8 array of {@code shape} holding {@code data}. */
    static INDArray int8(byte[] data, long... shape) {
        return bytesArray(DataType.INT8, data, shape);
    }

    private static INDArray bytesArray(DataType t, byte[] data, long... shape) {
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            INDArray a = Nd4j.createUninitialized(t, shape);
            if (data.length != a.length()) {
                throw new IllegalArgumentException(data.length + " bytes do not fill shape " + java.util.Arrays.toString(shape));
            }
            if (data.length > 0) {
                new BytePointer(a.data().addressPointer()).put(data, 0, data.length);
            }
            return a;
        }
    }

    /** A new FLOAT vector holding a copy of {@code data}. */
    static INDArray float32(float[] data) {
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            INDArray a = Nd4j.createUninitialized(DataType.FLOAT, data.length);
            if (data.length > 0) {
                putFloats(a, 0, data, 0, data.length);
            }
            return a;
        }
    }

    /** The bytes of a U8 or I8 array, in row-major order. */
    static byte[] bytes(INDArray a) {
        if (a.dataType() != DataType.UINT8 && a.dataType() != DataType.INT8) {
            throw new IllegalArgumentException("expected U8/I8 data, found " + a.dataType());
        }
        INDArray c = contiguous(a);
        byte[] out = new byte[Math.toIntExact(c.length())];
        if (out.length > 0) {
            new BytePointer(c.data().addressPointer()).get(out, 0, out.length);
        }
        return out;
    }

    /** The values of any array as floats, in row-major order. */
    static float[] floats(INDArray a) {
        INDArray f = a.dataType() == DataType.FLOAT ? a : a.castTo(DataType.FLOAT);
        return contiguous(f).reshape(f.length()).toFloatVector();
    }

    /** {@code dst[dstFrom ..] = src[off .. off + len)}; {@code dst} is a contiguous FLOAT array. */
    static void putFloats(INDArray dst, long dstFrom, float[] src, int off, int len) {
        requireOwnBuffer(dst);
        FloatPointer p = new FloatPointer(dst.data().addressPointer());
        p.position(dstFrom);
        p.put(src, off, len);
    }

    /** {@code dst[dstFrom ..] = src[off .. off + len)} widened to double; {@code dst} is a contiguous DOUBLE array. */
    static void putDoubles(INDArray dst, long dstFrom, float[] src, int off, int len, double[] tmp) {
        for (int i = 0; i < len; i++) {
            tmp[i] = src[off + i];
        }
        requireOwnBuffer(dst);
        DoublePointer p = new DoublePointer(dst.data().addressPointer());
        p.position(dstFrom);
        p.put(tmp, 0, len);
    }

    /** {@code dst[off .. off + len) = src[srcFrom ..]}; {@code src} is a contiguous FLOAT array. */
    static void getFloats(INDArray src, long srcFrom, float[] dst, int off, int len) {
        requireOwnBuffer(src);
        FloatPointer p = new FloatPointer(src.data().addressPointer());
        p.position(srcFrom);
        p.get(dst, off, len);
    }

    /** {@code a} itself when it owns a dense row-major buffer from its first element on, else a row-major copy. */
    static INDArray contiguous(INDArray a) {
        boolean own = !a.isView() && a.offset() == 0 && a.ordering() == 'c'
                && (a.length() <= 1 || (Shape.hasDefaultStridesForShape(a) && a.elementWiseStride() == 1));
        return own ? a : a.dup('c');
    }

    private static void requireOwnBuffer(INDArray a) {
        if (a.isView() || a.offset() != 0 || a.ordering() != 'c') {
            throw new IllegalArgumentException("expected an array owning its row-major buffer, got a view/offset array");
        }
    }
}
