package org.peft4j.core.io;

import onnx.Onnx;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.shade.protobuf.ByteString;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** ONNX tensors as arrays, independent of any model family (the BERT mapping is tested in model.bert). */
class OnnxReaderTest {

    @Test
    void halfPrecisionDecoding() {
        assertEquals(1.0f, OnnxReader.halfToFloat((short) 0x3c00), 0f);
        assertEquals(-2.0f, OnnxReader.halfToFloat((short) 0xc000), 0f);
        assertEquals(65504f, OnnxReader.halfToFloat((short) 0x7bff), 0f);
        assertEquals(0x1p-24f, OnnxReader.halfToFloat((short) 0x0001), 0f);
        assertEquals(Float.POSITIVE_INFINITY, OnnxReader.halfToFloat((short) 0x7c00), 0f);
    }

    @Test
    void rawLittleEndianFloatsKeepTheirShape() {
        // [2, 3] row-major: 0.5, -1, 2, 3.25, 0, 1e-3
        float[] v = {0.5f, -1f, 2f, 3.25f, 0f, 1e-3f};
        ByteBuffer bb = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            bb.putFloat(f);
        }
        Onnx.TensorProto t = Onnx.TensorProto.newBuilder().setName("w").setDataType(Onnx.TensorProto.DataType.FLOAT_VALUE)
                .addDims(2).addDims(3).setRawData(ByteString.copyFrom(bb.array())).build();
        INDArray a = OnnxReader.toArray(t, "test.onnx");
        assertArrayEquals(new long[]{2, 3}, a.shape());
        assertEquals(DataType.FLOAT, a.dataType());
        assertEquals(3.25f, a.getFloat(1, 0), 0f);
        assertEquals(1e-3f, a.getFloat(1, 2), 0f);
        assertEquals(-1f, a.getFloat(0, 1), 0f);
    }

    @Test
    void typedFieldsAreReadWhenThereIsNoRawData() {
        Onnx.TensorProto ints = Onnx.TensorProto.newBuilder().setName("shape").setDataType(Onnx.TensorProto.DataType.INT64_VALUE)
                .addDims(4).addInt64Data(1).addInt64Data(-1).addInt64Data(12).addInt64Data(32).build();
        assertArrayEquals(new long[]{1, -1, 12, 32}, OnnxReader.toArray(ints, "test.onnx").toLongVector());

        // FLOAT16 in int32_data holds one half per int: 0x3c00 = 1.0, 0xc000 = -2.0
        Onnx.TensorProto half = Onnx.TensorProto.newBuilder().setName("h").setDataType(Onnx.TensorProto.DataType.FLOAT16_VALUE)
                .addDims(2).addInt32Data(0x3c00).addInt32Data(0xc000).build();
        INDArray h = OnnxReader.toArray(half, "test.onnx");
        assertEquals(DataType.FLOAT, h.dataType());
        assertEquals(1.0f, h.getFloat(0), 0f);
        assertEquals(-2.0f, h.getFloat(1), 0f);
    }

    @Test
    void wrongByteCountNamesTensorAndFile() {
        Onnx.TensorProto t = Onnx.TensorProto.newBuilder().setName("short_tensor").setDataType(Onnx.TensorProto.DataType.FLOAT_VALUE)
                .addDims(3).setRawData(ByteString.copyFrom(new byte[8])).build();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OnnxReader.toArray(t, "cut.onnx"));
        assertTrue(e.getMessage().contains("short_tensor") && e.getMessage().contains("cut.onnx")
                && e.getMessage().contains("expected 12"), e.getMessage());
    }

    @Test
    void bytesThatAreNotAModelAreRejectedWithTheirSource() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> OnnxReader.parse(new byte[]{0x0a, 0x7f, 0x01}, "junk.onnx"));
        assertTrue(e.getMessage().contains("junk.onnx"), e.getMessage());
    }
}
