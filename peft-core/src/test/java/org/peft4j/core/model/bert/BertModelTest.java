package org.peft4j.core.model.bert;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.nn.AttentionContext;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The BERT family on tiny random configurations: names, shapes, checkpoints, errors, gradients. */
class BertModelTest {

    static BertConfig tiny() {
        return BertConfig.builder().vocabSize(30).hiddenSize(8).numHiddenLayers(2).numAttentionHeads(2)
                .intermediateSize(16).maxPositionEmbeddings(16).typeVocabSize(2).build();
    }

    static INDArray ids() {
        return Nd4j.createFromArray(new long[][]{{2, 5, 7, 9, 3, 0}, {2, 11, 3, 0, 0, 0}});
    }

    static INDArray mask() {
        return Nd4j.createFromArray(new long[][]{{1, 1, 1, 1, 1, 0}, {1, 1, 1, 0, 0, 0}});
    }

    @Test
    void parameterNamesAreHuggingFaceKeys() {
        BertConfig c = tiny();
        BertModel m = new BertModel(c, true, new Rng(1));
        Map<String, long[]> expected = BertKeys.expectedShapes(c, true);
        assertEquals(List.copyOf(expected.keySet()), List.copyOf(m.namedParameters().keySet()));
        m.namedParameters().forEach((k, p) -> assertArrayEquals(expected.get(k), p.shape(), k));
        assertTrue(m.namedParameters().containsKey("encoder.layer.1.attention.self.query.weight"));
        assertTrue(m.namedParameters().containsKey("encoder.layer.0.output.LayerNorm.bias"));
        assertTrue(m.namedParameters().containsKey("pooler.dense.weight"));
        // Hugging Face initialisation: padding row zero, LayerNorm ones, biases zero, weights ~N(0, 0.02)
        assertEquals(0.0, m.stateDict().get("embeddings.word_embeddings.weight").getRow(0).norm2Number().doubleValue(), 0);
        assertEquals(8.0, m.stateDict().get("embeddings.LayerNorm.weight").sumNumber().doubleValue(), 0);
        assertEquals(0.0, m.stateDict().get("encoder.layer.0.attention.self.key.bias").norm2Number().doubleValue(), 0);
        double std = m.stateDict().get("encoder.layer.0.intermediate.dense.weight").stdNumber().doubleValue();
        assertTrue(std > 0.012 && std < 0.028, "std " + std);
        assertFalse(new BertModel(c, false, new Rng(1)).hasPooler());
    }

    @Test
    void forwardShapesAndModes() {
        BertModel m = new BertModel(tiny(), true, new Rng(2));
        m.eval();
        BertModel.Output out = m.forward(ids(), mask(), null);
        assertArrayEquals(new long[]{2, 6, 8}, out.lastHiddenState().shape());
        assertArrayEquals(new long[]{2, 8}, out.pooledOutput().shape());
        // eval is deterministic; token type ids of zeros equal none
        INDArray a = out.lastHiddenState().value();
        INDArray b = m.forward(ids(), mask(), Nd4j.zeros(DataType.INT64, 2, 6)).lastHiddenState().value();
        assertTrue(a.equalsWithEps(b, 1e-6));
        // padding is invisible to real tokens: row 1 alone, unpadded, gives the same first 3 states
        INDArray alone = m.forward(Nd4j.createFromArray(new long[][]{{2, 11, 3}}), null, null).lastHiddenState().value();
        for (int t = 0; t < 3; t++) {
            for (int d = 0; d < 8; d++) {
                assertEquals(alone.getDouble(0, t, d), a.getDouble(1, t, d), 1e-5);
            }
        }
        // training mode with dropout changes the output
        m.train();
        INDArray tr = m.forward(ids(), mask(), null).lastHiddenState().value();
        assertFalse(tr.equalsWithEps(a, 1e-6));
    }

    @Test
    void tooLongInputIsRejected() {
        BertModel m = new BertModel(tiny(), false, new Rng(3));
        INDArray longIds = Nd4j.ones(DataType.INT64, 1, 17);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.forward(longIds, null, null));
        assertTrue(e.getMessage().contains("17") && e.getMessage().contains("16")
                && e.getMessage().contains("max_position_embeddings"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> m.forward(ids(), Nd4j.ones(DataType.INT64, 2, 5), null));
        IllegalArgumentException v = assertThrows(IllegalArgumentException.class,
                () -> m.forward(Nd4j.createFromArray(new long[][]{{2, 30}}), null, null));
        assertTrue(v.getMessage().contains("30"), v.getMessage());
    }

    @Test
    void saveAndLoadRoundTrip(@TempDir Path dir) throws Exception {
        BertModel m = new BertModel(tiny(), true, new Rng(4));
        m.eval();
        m.save(dir);
        assertTrue(Files.isRegularFile(dir.resolve("config.json")));
        assertTrue(Files.isRegularFile(dir.resolve("model.safetensors")));
        assertEquals("pt", SafeTensors.readMetadata(dir.resolve("model.safetensors")).get("format"));
        BertModel back = BertModel.load(dir);
        assertEquals(m.config(), back.config());
        assertTrue(back.hasPooler());
        assertFalse(back.isTraining());
        BertModel.Output a = m.forward(ids(), mask(), null);
        BertModel.Output b = back.forward(ids(), mask(), null);
        assertEquals(a.lastHiddenState().value(), b.lastHiddenState().value());
        assertEquals(a.pooledOutput().value(), b.pooledOutput().value());
    }

    @Test
    void shardedCheckpointLoadsThroughTheIndex(@TempDir Path dir) throws Exception {
        BertModel m = new BertModel(tiny(), true, new Rng(6));
        m.eval();
        m.save(dir);
        // rewrite the weights as shards of at most 2 KB plus model.safetensors.index.json
        Map<String, INDArray> w = new LinkedHashMap<>(SafeTensors.load(dir.resolve("model.safetensors")));
        org.peft4j.core.io.HfFolder.writeWeights(dir, w, 2_000);
        assertFalse(Files.exists(dir.resolve("model.safetensors")));
        java.util.Set<String> shards = new java.util.TreeSet<>();
        JsonFiles.readObject(dir.resolve("model.safetensors.index.json")).get("weight_map").forEach(n -> shards.add(n.asText()));
        assertTrue(shards.size() >= 3, "shards " + shards);
        BertModel back = BertModel.load(dir);
        assertTrue(back.hasPooler());
        back.eval();
        BertModel.Output a = m.forward(ids(), mask(), null);
        BertModel.Output b = back.forward(ids(), mask(), null);
        assertEquals(a.lastHiddenState().value(), b.lastHiddenState().value());
        assertEquals(a.pooledOutput().value(), b.pooledOutput().value());
        // a shard named by the index but missing on disk is named in the error
        Files.delete(dir.resolve(shards.iterator().next()));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BertModel.load(dir));
        assertTrue(e.getMessage().contains(shards.iterator().next()), e.getMessage());
    }

    private static Path saved(Path dir) {
        BertModel m = new BertModel(tiny(), false, new Rng(5));
        m.save(dir);
        return dir;
    }

    @Test
    void missingTensorIsNamed(@TempDir Path dir) throws Exception {
        saved(dir);
        Map<String, INDArray> w = new LinkedHashMap<>(SafeTensors.load(dir.resolve("model.safetensors")));
        w.remove("encoder.layer.1.intermediate.dense.bias");
        SafeTensors.write(dir.resolve("model.safetensors"), w);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BertModel.load(dir));
        assertTrue(e.getMessage().contains("missing keys [encoder.layer.1.intermediate.dense.bias]"), e.getMessage());
        assertTrue(e.getMessage().contains("model.safetensors"), e.getMessage());
    }

    @Test
    void wrongShapeIsNamed(@TempDir Path dir) throws Exception {
        saved(dir);
        Map<String, INDArray> w = new LinkedHashMap<>(SafeTensors.load(dir.resolve("model.safetensors")));
        w.put("encoder.layer.0.attention.self.value.weight", Nd4j.zeros(DataType.FLOAT, 8, 7));
        SafeTensors.write(dir.resolve("model.safetensors"), w);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BertModel.load(dir));
        assertTrue(e.getMessage().contains("'encoder.layer.0.attention.self.value.weight': expected [8, 8], found [8, 7]"),
                e.getMessage());
    }

    @Test
    void unexpectedTensorIsNamed(@TempDir Path dir) throws Exception {
        saved(dir);
        Map<String, INDArray> w = new LinkedHashMap<>(SafeTensors.load(dir.resolve("model.safetensors")));
        w.put("encoder.layer.2.output.dense.weight", Nd4j.zeros(DataType.FLOAT, 8, 16));
        SafeTensors.write(dir.resolve("model.safetensors"), w);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BertModel.load(dir));
        assertTrue(e.getMessage().contains("unexpected keys [encoder.layer.2.output.dense.weight]"), e.getMessage());
    }

    @Test
    void truncatedWeightsFileIsNamed(@TempDir Path dir) throws Exception {
        saved(dir);
        Path f = dir.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(f);
        Files.write(f, Arrays.copyOf(bytes, bytes.length / 2));
        RuntimeException e = assertThrows(RuntimeException.class, () -> BertModel.load(dir));
        assertTrue(e instanceof IllegalArgumentException || e instanceof java.io.UncheckedIOException, e.toString());
        assertTrue(e.getMessage().contains("model.safetensors"), e.getMessage());
    }

    @Test
    void configMissingKeyIsNamed(@TempDir Path dir) throws Exception {
        saved(dir);
        ObjectNode cfg = (ObjectNode) JsonFiles.read(dir.resolve("config.json"));
        cfg.remove("num_attention_heads");
        Files.writeString(dir.resolve("config.json"), cfg.toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BertModel.load(dir));
        assertTrue(e.getMessage().contains("num_attention_heads"), e.getMessage());
        assertTrue(e.getMessage().contains("config.json"), e.getMessage());
    }

    @Test
    void acceptsBertPrefixBuffersAndPretrainingHeads() {
        BertConfig c = tiny();
        BertModel m = new BertModel(c, true, new Rng(6));
        Map<String, INDArray> w = new LinkedHashMap<>();
        m.stateDict().forEach((k, v) -> w.put("bert." + k, v.dup()));
        w.put("bert.embeddings.position_ids", Nd4j.arange(16).castTo(DataType.INT64).reshape(1, 16));
        w.put("cls.predictions.bias", Nd4j.zeros(30));
        BertModel back = BertModel.fromWeights(c, w, "prefixed", new Rng(0));
        back.eval();
        m.eval();
        assertEquals(m.forward(ids(), mask(), null).lastHiddenState().value(),
                back.forward(ids(), mask(), null).lastHiddenState().value());
        // without the bert. prefix, a stray head key is unexpected
        Map<String, INDArray> plain = new LinkedHashMap<>(m.stateDict());
        plain.put("cls.predictions.bias", Nd4j.zeros(30));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BertModel.fromWeights(c, plain, "plain", new Rng(0)));
        assertTrue(e.getMessage().contains("cls.predictions.bias"), e.getMessage());
    }

    // ---- heads ----------------------------------------------------------------------------------

    @Test
    void sequenceClassificationHead(@TempDir Path dir) {
        BertConfig c = tiny().toBuilder().id2label(List.of("neg", "pos", "neutral")).build();
        BertForSequenceClassification m = new BertForSequenceClassification(c, new Rng(7));
        assertTrue(m.namedParameters().containsKey("bert.encoder.layer.0.attention.self.query.weight"));
        assertTrue(m.namedParameters().containsKey("bert.pooler.dense.weight"));
        assertArrayEquals(new long[]{3, 8}, m.namedParameters().get("classifier.weight").shape());
        m.eval();
        Tensor logits = m.forward(ids(), mask(), null);
        assertArrayEquals(new long[]{2, 3}, logits.shape());
        m.save(dir);
        BertForSequenceClassification back = BertForSequenceClassification.load(dir);
        assertEquals(List.of("neg", "pos", "neutral"), back.config().id2label());
        assertEquals(logits.value(), back.forward(ids(), mask(), null).value());

        // mean pooling on an encoder without a pooler; the pooler is required for POOLER
        BertModel enc = new BertModel(tiny(), false, new Rng(8));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BertForSequenceClassification.withNewHead(enc, 2, BertConfig.Pooling.POOLER, new Rng(9)));
        assertTrue(e.getMessage().contains("pooler"), e.getMessage());
        BertForSequenceClassification mean = BertForSequenceClassification.withNewHead(enc, 2, BertConfig.Pooling.MEAN, new Rng(9));
        mean.eval();
        assertEquals(0.0, mean.namedParameters().get("classifier.bias").value().sumNumber().doubleValue(), 0);
        Tensor ml = mean.forward(ids(), mask(), null);
        // by hand: masked mean of the encoder's states through the classifier
        INDArray h = enc.forward(ids(), mask(), null).lastHiddenState().value();
        INDArray w = mean.namedParameters().get("classifier.weight").value();
        for (int b = 0; b < 2; b++) {
            int n = b == 0 ? 5 : 3;
            INDArray avg = Nd4j.zeros(8);
            for (int t = 0; t < n; t++) {
                avg.addi(h.get(org.nd4j.linalg.indexing.NDArrayIndex.point(b), org.nd4j.linalg.indexing.NDArrayIndex.point(t),
                        org.nd4j.linalg.indexing.NDArrayIndex.all()));
            }
            avg.divi(n);
            for (int k = 0; k < 2; k++) {
                assertEquals(w.getRow(k).mul(avg).sumNumber().doubleValue(), ml.value().getDouble(b, k), 1e-5);
            }
        }
    }

    @Test
    void tokenClassificationHead(@TempDir Path dir) {
        BertConfig c = tiny().toBuilder().numLabels(5).build();
        BertForTokenClassification m = new BertForTokenClassification(c, new Rng(10));
        assertNull(m.bert().child("pooler"));
        m.eval();
        Tensor logits = m.forward(ids(), mask(), null);
        assertArrayEquals(new long[]{2, 6, 5}, logits.shape());
        m.save(dir);
        BertForTokenClassification back = BertForTokenClassification.load(dir);
        assertEquals(logits.value(), back.forward(ids(), mask(), null).value());
        // a sequence-classification checkpoint with the wrong label count is rejected by name
        BertConfig wrong = c.toBuilder().numLabels(4).build();
        Map<String, INDArray> w = m.stateDict();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BertForTokenClassification.fromWeights(wrong, w, "ck", new Rng(0)));
        assertTrue(e.getMessage().contains("'classifier.weight': expected [4, 8], found [5, 8]"), e.getMessage());
    }

    // ---- gradients ------------------------------------------------------------------------------

    /** A stand-in for a Linear whose weight and bias are the gradient check's variables. */
    private static final class VarLinear extends Module implements UnaryModule {
        private final Tensor w;
        private final Tensor b;

        VarLinear(Tensor w, Tensor b) {
            this.w = w;
            this.b = b;
        }

        @Override
        public Tensor forward(Tensor x) {
            return Ops.linear(x, w, b);
        }
    }

    private static final class VarLayerNorm extends Module implements UnaryModule {
        private final Tensor g;
        private final Tensor b;

        VarLayerNorm(Tensor g, Tensor b) {
            this.g = g;
            this.b = b;
        }

        @Override
        public Tensor forward(Tensor x) {
            return Ops.layerNorm(x, g, b, 1e-12);
        }
    }

    private static BertModel doubleModel() {
        BertConfig c = tiny().toBuilder().hiddenDropoutProb(0).attentionProbsDropoutProb(0).build();
        BertModel m = new BertModel(c, true, new Rng(11));
        // larger weights than the 0.02 init so that every path carries a visible gradient
        Rng r = new Rng(12);
        for (Parameter p : m.parameters()) {
            INDArray v = p.value().castTo(DataType.DOUBLE);
            if (v.rank() == 2) {
                for (long i = 0; i < v.length(); i++) {
                    v.putScalar(i, r.nextGaussian() * 0.5);
                }
            }
            p.setValue(v);
        }
        return m;
    }

    private static INDArray param(BertModel m, String key) {
        return m.namedParameters().get(key).value().dup();
    }

    @Test
    void gradientsThroughTheWholeEncoder() {
        // a few elements of a query weight (layer 0), an FFN output bias (layer 1), the embedding
        // LayerNorm scale and the input embeddings themselves, through both layers and the pooler
        BertModel m = doubleModel();
        m.eval();
        INDArray qW = param(m, "encoder.layer.0.attention.self.query.weight");
        INDArray qB = param(m, "encoder.layer.0.attention.self.query.bias");
        INDArray oW = param(m, "encoder.layer.1.output.dense.weight");
        INDArray oB = param(m, "encoder.layer.1.output.dense.bias");
        INDArray lnG = param(m, "embeddings.LayerNorm.weight");
        INDArray lnB = param(m, "embeddings.LayerNorm.bias");
        INDArray embeds;
        try (NoGrad ignored = NoGrad.enter()) {
            embeds = m.embeddings().wordEmbeddings(ids()).value().dup();
        }
        AttentionContext ctx = AttentionContext.of(mask());
        double worst = GradCheck.of("BertModel", in -> {
            m.replace("encoder.layer.0.attention.self.query", new VarLinear(in[0], in[1]));
            m.replace("encoder.layer.1.output.dense", new VarLinear(in[2], in[3]));
            m.replace("embeddings.LayerNorm", new VarLayerNorm(in[4], in[5]));
            BertModel.Output out = m.forwardEmbeds(in[6], null, ctx);
            return Ops.concat(1, Ops.reshape(out.lastHiddenState(), 2, 48), out.pooledOutput());
        }, qW, qB, oW, oB, lnG, lnB, embeds).requiresGrad(true, false, false, true, true, false, true).maxElements(8).check();
        assertTrue(worst <= 1.0, "scaled error " + worst);
    }

    @Test
    void gradientsThroughTheClassificationHeadWithMeanPooling() {
        BertModel enc = doubleModel();
        BertForSequenceClassification m = BertForSequenceClassification.withNewHead(enc, 3, BertConfig.Pooling.MEAN, new Rng(13));
        m.eval();
        INDArray vW = param(enc, "encoder.layer.1.attention.self.value.weight");
        INDArray vB = param(enc, "encoder.layer.1.attention.self.value.bias");
        INDArray cW = m.namedParameters().get("classifier.weight").value().castTo(DataType.DOUBLE).muli(10);
        INDArray cB = Nd4j.zeros(DataType.DOUBLE, 3);
        GradCheck.of("BertForSequenceClassification", in -> {
            m.replace("bert.encoder.layer.1.attention.self.value", new VarLinear(in[0], in[1]));
            m.replace("classifier", new VarLinear(in[2], in[3]));
            return m.forward(ids(), mask(), null);
        }, vW, vB, cW, cB).requiresGrad(true, false, true, false).maxElements(8).check();
    }
}
