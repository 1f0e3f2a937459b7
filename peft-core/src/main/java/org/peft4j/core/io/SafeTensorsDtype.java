package org.peft4j.core.io;

import org.nd4j.linalg.api.buffer.DataType;

/**
 * The element types of the safetensors format, named as in the file header ({@code "F32"},
 * {@code "BF16"}, ...), with their byte sizes and ND4J counterparts.
 *
 * <p>The declaration order is the reference implementation's ({@code Dtype} in
 * huggingface/safetensors {@code safetensors/src/tensor.rs}, "in increasing alignment order");
 * its writer lays tensors out by this order, descending, then by name, and {@link SafeTensors#write}
 * does the same so that our files are byte-identical to the reference writer's.
 * The sub-byte types of newer reference versions (F4, F6_E2M3, F6_E3M2) are not supported.
 */
public enum SafeTensorsDtype {
    BOOL(1, DataType.BOOL),
    U8(1, DataType.UINT8),
    I8(1, DataType.INT8),
    F8_E5M2(1, null),
    F8_E4M3(1, null),
    F8_E8M0(1, null),
    I16(2, DataType.INT16),
    U16(2, DataType.UINT16),
    F16(2, DataType.HALF),
    BF16(2, DataType.BFLOAT16),
    I32(4, DataType.INT32),
    U32(4, DataType.UINT32),
    F32(4, DataType.FLOAT),
    C64(8, null),
    F64(8, DataType.DOUBLE),
    I64(8, DataType.INT64),
    U64(8, DataType.UINT64);

    private final int size;
    private final DataType nd4j;

    SafeTensorsDtype(int size, DataType nd4j) {
        this.size = size;
        this.nd4j = nd4j;
    }

    /** Bytes per element. */
    public int size() {
        return size;
    }

    /** The ND4J type that holds this dtype's values unchanged, or null (FP8 variants, C64). */
    public DataType nd4jType() {
        return nd4j;
    }

    /** True for the 16-bit floats that {@link SafeTensorsFile#get(String)} widens to FLOAT. */
    public boolean isHalfFloat() {
        return this == F16 || this == BF16;
    }

    /** The dtype named {@code name} in a header, or null if the name is not a known dtype. */
    public static SafeTensorsDtype fromName(String name) {
        if (name == null) {
            return null;
        }
        for (SafeTensorsDtype d : values()) {
            if (d.name().equals(name)) {
                return d;
            }
        }
        return null;
    }

    /**
     * The dtype that stores an ND4J array of type {@code type} without conversion.
     *
     * @throws IllegalArgumentException for types safetensors cannot hold (UTF8, COMPRESSED, UNKNOWN)
     */
    public static SafeTensorsDtype fromNd4j(DataType type) {
        for (SafeTensorsDtype d : values()) {
            if (d.nd4j == type) {
                return d;
            }
        }
        throw new IllegalArgumentException("ND4J data type " + type + " has no safetensors dtype");
    }
}
