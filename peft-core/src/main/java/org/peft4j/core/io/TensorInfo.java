package org.peft4j.core.io;

import java.util.Arrays;

/**
 * One header entry of a {@code .safetensors} file: the tensor's key, dtype, shape and the byte
 * range {@code [begin, end)} of its data, relative to the start of the data section (as in the
 * header's {@code data_offsets}).
 */
public record TensorInfo(String name, SafeTensorsDtype dtype, long[] shape, long begin, long end) {

    public TensorInfo {
        shape = shape.clone();
    }

    /** The shape (a copy); {@code []} for a 0-d tensor. */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** The header's dtype string, e.g. {@code "BF16"}. */
    public String dtypeName() {
        return dtype.name();
    }

    public int rank() {
        return shape.length;
    }

    /** Number of elements: the product of the shape (1 for a 0-d tensor, 0 if a dimension is 0). */
    public long numel() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** Bytes of data: {@code end - begin}, which the reader checks equals numel × dtype size. */
    public long byteSize() {
        return end - begin;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && name.equals(t.name) && dtype == t.dtype
                && Arrays.equals(shape, t.shape) && begin == t.begin && end == t.end;
    }

    @Override
    public int hashCode() {
        return (name.hashCode() * 31 + dtype.hashCode()) * 31 + Arrays.hashCode(shape) + Long.hashCode(begin * 31 + end);
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape) + " @[" + begin + ", " + end + ")";
    }
}
