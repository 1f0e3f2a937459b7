package org.peft4j.core.model.bert;

import onnx.Onnx;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.OnnxReader;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BertOnnxImportTest {
    static byte[] miniBytes;
    static BertOnnxImport.BertWeights mini;

    @BeforeAll
    static void load() {
        miniBytes = OnnxReader.readResource("/all-minilm-l6-v2.onnx");
        mini = BertOnnxImport.bert(miniBytes, "all-minilm-l6-v2.onnx");
    }

    @Test
    void miniLmConfigIsInferred() {
        BertConfig c = mini.config();
        assertEquals(6, c.numHiddenLayers());
        assertEquals(384, c.hiddenSize());
        assertEquals(12, c.numAttentionHeads());
        assertEquals(1536, c.intermediateSize());
        assertEquals(30522, c.vocabSize());
        assertEquals(512, c.maxPositionEmbeddings());
        assertEquals(2, c.typeVocabSize());
        assertEquals(1e-12, c.layerNormEps(), 0.0);
        assertEquals("gelu", c.hiddenAct());
        assertFalse(mini.hasPooler());
        assertEquals(BertConfig.Pooling.MEAN, c.classifierPooling());
    }

    @Test
    void everyMiniLmInitializerIsMappedOrIgnored() {
        Onnx.GraphProto g = OnnxReader.parse(miniBytes, "mini").getGraph();
        assertEquals(102, g.getInitializerCount());
        assertEquals(List.of("embeddings.position_ids"), mini.ignored());
        assertEquals(101, mini.weights().size());
        Map<String, long[]> expected = BertKeys.expectedShapes(mini.config(), false);
        assertEquals(expected.keySet(), mini.weights().keySet());
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            assertArrayEquals(e.getValue(), mini.weights().get(e.getKey()).shape(), e.getKey());
        }
    }

    /** Reads one initializer's raw little-endian floats straight from the protobuf, independently of the importer. */
    private static float[] rawFloats(Onnx.GraphProto g, String name) {
        for (Onnx.TensorProto t : g.getInitializerList()) {
            if (t.getName().equals(name)) {
                ByteBuffer bb = ByteBuffer.wrap(t.getRawData().toByteArray()).order(ByteOrder.LITTLE_ENDIAN);
                float[] f = new float[bb.remaining() / 4];
                bb.asFloatBuffer().get(f);
                return f;
            }
        }
        throw new AssertionError("no initializer " + name);
    }

    @Test
    void matMulWeightsAreNamedThroughTheGraphAndTransposed() {
        Onnx.GraphProto g = OnnxReader.parse(miniBytes, "mini").getGraph();
        // REFERENCE §7: /encoder/layer.0/attention/self/query/MatMul takes onnx::MatMul_787, stored [in, out]
        float[] raw = rawFloats(g, "onnx::MatMul_787");
        INDArray q = mini.weights().get("encoder.layer.0.attention.self.query.weight");
        int n = 384;
        for (int[] ij : new int[][]{{0, 0}, {0, 1}, {1, 0}, {5, 300}, {383, 7}, {200, 383}}) {
            int in = ij[0];
            int out = ij[1];
            assertEquals(raw[in * n + out], q.getFloat(out, in), 0.0, "W[" + out + "," + in + "]");
        }
        // the FFN output matrix is [1536 in, 384 out] in ONNX and [384, 1536] here
        INDArray o = mini.weights().get("encoder.layer.5.output.dense.weight");
        assertArrayEquals(new long[]{384, 1536}, o.shape());
        // a named tensor is copied as is
        float[] bias = rawFloats(g, "encoder.layer.3.intermediate.dense.bias");
        INDArray b = mini.weights().get("encoder.layer.3.intermediate.dense.bias");
        for (int i = 0; i < bias.length; i += 97) {
            assertEquals(bias[i], b.getFloat(i), 0.0);
        }
    }

    @Test
    void bgeImports() {
        BertOnnxImport.BertWeights bge = BertOnnxImport.bertFromResource("/bge-small-en-v1.5.onnx");
        BertConfig c = bge.config();
        assertEquals(12, c.numHiddenLayers());
        assertEquals(384, c.hiddenSize());
        assertEquals(12, c.numAttentionHeads());
        assertEquals(1536, c.intermediateSize());
        assertEquals(30522, c.vocabSize());
        assertEquals(1e-12, c.layerNormEps(), 0.0);
        assertEquals(197, bge.weights().size());
        assertTrue(bge.ignored().isEmpty(), "BGE keeps position_ids as a Constant node: " + bge.ignored());
        long params = 0;
        for (INDArray v : bge.weights().values()) {
            params += v.length();
        }
        // embeddings (30522 + 512 + 2) * 384 + LN 768; per layer 4 * (384² + 384) + 2 * 768 + 2 * 384 * 1536 + 1536 + 384;
        // no pooler (33.36M with it, the published "33M")
        long perLayer = 4L * (384 * 384 + 384) + 2 * 768 + 2L * 384 * 1536 + 1536 + 384;
        assertEquals((30522L + 512 + 2) * 384 + 768 + 12 * perLayer, params);
        assertEquals(33_212_160L, params);
    }

    @Test
    void unmappedInitializerIsNamed() {
        Onnx.ModelProto.Builder m = OnnxReader.parse(miniBytes, "mini").toBuilder();
        m.getGraphBuilder().addInitializer(Onnx.TensorProto.newBuilder().setName("mystery_tensor")
                .setDataType(Onnx.TensorProto.DataType.FLOAT_VALUE).addDims(2).addFloatData(1f).addFloatData(2f));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BertOnnxImport.bert(m.build().toByteArray(), "patched.onnx"));
        assertTrue(e.getMessage().contains("mystery_tensor"), e.getMessage());
        assertTrue(e.getMessage().contains("patched.onnx"), e.getMessage());
    }

    @Test
    void missingTensorIsNamed() {
        Onnx.ModelProto.Builder m = OnnxReader.parse(miniBytes, "mini").toBuilder();
        Onnx.GraphProto.Builder g = m.getGraphBuilder();
        for (int i = 0; i < g.getInitializerCount(); i++) {
            if (g.getInitializer(i).getName().equals("encoder.layer.2.output.LayerNorm.bias")) {
                g.removeInitializer(i);
                break;
            }
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BertOnnxImport.bert(m.build().toByteArray(), "cut.onnx"));
        assertTrue(e.getMessage().contains("encoder.layer.2.output.LayerNorm.bias"), e.getMessage());
    }

    @Test
    void garbageIsRejected() {
        byte[] junk = Arrays.copyOf(miniBytes, 1000);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BertOnnxImport.bert(junk, "junk.onnx"));
        assertTrue(e.getMessage().contains("junk.onnx"), e.getMessage());
    }
}
