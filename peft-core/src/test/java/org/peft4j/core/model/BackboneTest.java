package org.peft4j.core.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.bert.BertForTokenClassification;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.model.gpt2.Gpt2Config;
import org.peft4j.core.model.gpt2.Gpt2LMHeadModel;
import org.peft4j.core.model.llama.LlamaConfig;
import org.peft4j.core.model.llama.LlamaForCausalLM;
import org.peft4j.core.nn.KVCache;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.tensor.GradCheck;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The {@link Backbone} interface of the three families on the PyTorch fixtures
 * ({@code scripts/reference/make_decoder_fixtures.py}) and on tiny random models: input
 * embeddings, hidden states, attention probabilities, key/value prefixes against the KV cache,
 * position offsets, gradients into embeddings and prefixes, and input validation.
 */
class BackboneTest {
    static final Path BERT_TINY = Path.of("src/test/resources/fixtures/bert-tiny");
    static final Path DECODERS = Path.of("src/test/resources/fixtures/decoders");
    /** fp32 against the PyTorch reference (different op order), as in DecoderReferenceTest. */
    static final double REF_TOL = 1e-4;
    /** fp32, the same model computed two ways (prefix vs cache, composed vs fused attention). */
    static final double SAME_TOL = 1e-5;

    static DecoderLM decoder(String name) throws IOException {
        Path dir = DECODERS.resolve(name);
        return name.startsWith("gpt2") ? Gpt2LMHeadModel.load(dir) : LlamaForCausalLM.load(dir);
    }

    static double maxAbsDiff(INDArray a, INDArray b) {
        assertArrayEquals(a.shape(), b.shape(), "shapes");
        return a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    }

    /** Largest |a − b| over positions {@code [b, t]} where {@code mask} is 1 ({@code a, b [B, T, ...]}). */
    static double maxAbsDiffMasked(INDArray a, INDArray b, INDArray mask) {
        assertArrayEquals(a.shape(), b.shape(), "shapes");
        double max = 0;
        for (int i = 0; i < mask.size(0); i++) {
            for (int j = 0; j < mask.size(1); j++) {
                if (mask.getLong(i, j) == 1) {
                    max = Math.max(max, maxAbsDiff(a.get(NDArrayIndex.point(i), NDArrayIndex.point(j)),
                            b.get(NDArrayIndex.point(i), NDArrayIndex.point(j))));
                }
            }
        }
        return max;
    }

    /** Columns {@code [from, to)} of ids {@code [B, T]}. */
    static INDArray cols(INDArray ids, long from, long to) {
        return ids.get(NDArrayIndex.all(), NDArrayIndex.interval(from, to)).dup();
    }

    /** Positions {@code [from, to)} of {@code x [B, T, V]}. */
    static INDArray steps(INDArray x, long from, long to) {
        return x.get(NDArrayIndex.all(), NDArrayIndex.interval(from, to), NDArrayIndex.all()).dup();
    }

    static INDArray randomIds(long seed, int b, int t, int vocab) {
        Rng r = new Rng(seed);
        long[][] ids = new long[b][t];
        for (long[] row : ids) {
            for (int j = 0; j < t; j++) {
                row[j] = 1 + r.nextInt(vocab - 1);
            }
        }
        return Nd4j.createFromArray(ids);
    }

    static INDArray randn(Rng r, long... shape) {
        INDArray a = Nd4j.create(DataType.DOUBLE, shape);
        for (long i = 0; i < a.length(); i++) {
            a.putScalar(i, r.nextGaussian() * 0.5);
        }
        return a;
    }

    static <M extends Module> M toDouble(M m) {
        for (Parameter p : m.parameters()) {
            p.setValue(p.value().castTo(DataType.DOUBLE));
        }
        return m;
    }

    // ---- forward from embed(ids) equals forward from ids ------------------------------------

    @Test
    void bertForwardFromEmbeddingsEqualsForwardFromIdsAndPyTorch() throws IOException {
        BertModel m = BertModel.load(BERT_TINY);
        Map<String, INDArray> ref = SafeTensors.load(BERT_TINY.resolve("reference.safetensors"));
        INDArray ids = ref.get("input_ids");
        INDArray mask = ref.get("attention_mask");
        INDArray types = ref.get("token_type_ids");
        try (NoGrad ignored = NoGrad.enter()) {
            BertModel.Output byIds = m.forward(ids, mask, types);
            BackboneOutput byEmbeds = m.forward(BackboneInputs.of(m.embed(ids), mask).withTokenTypeIds(types));
            // the same computation: exact
            assertEquals(0.0, maxAbsDiff(byIds.lastHiddenState().value(), byEmbeds.lastHiddenState().value()), 0.0);
            assertEquals(0.0, maxAbsDiff(byIds.pooledOutput().value(),
                    m.pooledOutput(byEmbeds.lastHiddenState()).value()), 0.0);
            assertTrue(maxAbsDiff(byIds.lastHiddenState().value(), ref.get("last_hidden_state")) <= REF_TOL);
            assertTrue(maxAbsDiff(byIds.pooledOutput().value(), ref.get("pooler_output")) <= REF_TOL);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama-gqa", "qwen2"})
    void decoderForwardFromEmbeddingsEqualsForwardFromIds(String name) throws IOException {
        DecoderLM m = decoder(name);
        Map<String, INDArray> ref = SafeTensors.load(DECODERS.resolve(name).resolve("reference.safetensors"));
        INDArray ids = ref.get("input_ids");
        INDArray mask = ref.get("attention_mask");
        try (NoGrad ignored = NoGrad.enter()) {
            INDArray byIds = m.forward(ids, mask).value();
            HeadOutput byEmbeds = m.forward(BackboneInputs.of(m.backbone().embed(ids), mask));
            assertEquals(0.0, maxAbsDiff(byIds, byEmbeds.logits().value()), 0.0, name);
            assertTrue(maxAbsDiffMasked(byIds, ref.get("logits"), mask) <= REF_TOL, name);
        }
    }

    @Test
    void bertHeadsOnTheBackboneEqualTheirIdForwards() {
        BertConfig c = BertConfig.builder().vocabSize(30).hiddenSize(8).numHiddenLayers(2).numAttentionHeads(2)
                .intermediateSize(16).maxPositionEmbeddings(16).typeVocabSize(2).numLabels(3).build();
        INDArray ids = Nd4j.createFromArray(new long[][]{{2, 5, 7, 9, 3, 0}, {2, 11, 3, 0, 0, 0}});
        INDArray mask = Nd4j.createFromArray(new long[][]{{1, 1, 1, 1, 1, 0}, {1, 1, 1, 0, 0, 0}});
        try (NoGrad ignored = NoGrad.enter()) {
            BertForSequenceClassification seq = new BertForSequenceClassification(c, new Rng(3));
            seq.eval();
            assertEquals(0.0, maxAbsDiff(seq.forward(ids, mask, null).value(),
                    seq.forward(BackboneInputs.of(seq.backbone().embed(ids), mask)).logits().value()), 0.0);
            BertForSequenceClassification mean = BertForSequenceClassification.withNewHead(
                    new BertModel(c, false, new Rng(4)), 2, BertConfig.Pooling.MEAN, new Rng(5));
            mean.eval();
            assertEquals(0.0, maxAbsDiff(mean.forward(ids, mask, null).value(),
                    mean.forward(BackboneInputs.of(mean.backbone().embed(ids), mask)).logits().value()), 0.0);
            BertForTokenClassification tok = new BertForTokenClassification(c, new Rng(6));
            tok.eval();
            assertEquals(0.0, maxAbsDiff(tok.forward(ids, mask, null).value(),
                    tok.forward(BackboneInputs.of(tok.backbone().embed(ids), mask)).logits().value()), 0.0);
        }
    }

    // ---- hidden states ------------------------------------------------------------------------

    @Test
    void bertHiddenStatesAreEmbeddingsThenEveryLayer() throws IOException {
        BertModel m = BertModel.load(BERT_TINY);
        Map<String, INDArray> ref = SafeTensors.load(BERT_TINY.resolve("reference.safetensors"));
        Map<String, INDArray> w = SafeTensors.load(BERT_TINY.resolve("model.safetensors"));
        INDArray ids = ref.get("input_ids");
        INDArray mask = ref.get("attention_mask");
        INDArray types = ref.get("token_type_ids");
        BackboneOutput o;
        try (NoGrad ignored = NoGrad.enter()) {
            o = m.forward(BackboneInputs.of(m.embed(ids), mask).withTokenTypeIds(types).withHiddenStates(true));
        }
        List<Tensor> hs = o.hiddenStates();
        assertEquals(m.numLayers() + 1, hs.size());
        assertEquals(0.0, maxAbsDiff(hs.get(m.numLayers()).value(), o.lastHiddenState().value()), 0.0);
        assertTrue(maxAbsDiff(hs.get(m.numLayers()).value(), ref.get("last_hidden_state")) <= REF_TOL);
        // hidden_states[0] by hand: LayerNorm(word[id] + position[t] + type[tt]) in double
        assertTrue(maxAbsDiff(hs.get(0).value(), bertEmbeddingsByHand(w, ids, types)) <= SAME_TOL);
        // the layers differ from each other (each entry is its own layer's output)
        assertTrue(maxAbsDiff(hs.get(0).value(), hs.get(1).value()) > 1e-2);
    }

    /** {@code LayerNorm(word + position + token type)} {@code [B, T, H]} from the raw checkpoint, in double. */
    static INDArray bertEmbeddingsByHand(Map<String, INDArray> w, INDArray ids, INDArray types) {
        INDArray word = w.get("embeddings.word_embeddings.weight").castTo(DataType.DOUBLE);
        INDArray pos = w.get("embeddings.position_embeddings.weight").castTo(DataType.DOUBLE);
        INDArray type = w.get("embeddings.token_type_embeddings.weight").castTo(DataType.DOUBLE);
        INDArray g = w.get("embeddings.LayerNorm.weight").castTo(DataType.DOUBLE);
        INDArray be = w.get("embeddings.LayerNorm.bias").castTo(DataType.DOUBLE);
        int b = (int) ids.size(0);
        int t = (int) ids.size(1);
        int h = (int) word.size(1);
        INDArray out = Nd4j.create(DataType.DOUBLE, b, t, h);
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < t; j++) {
                double[] e = new double[h];
                double mean = 0;
                for (int d = 0; d < h; d++) {
                    e[d] = word.getDouble(ids.getLong(i, j), d) + pos.getDouble(j, d) + type.getDouble(types.getLong(i, j), d);
                    mean += e[d] / h;
                }
                double var = 0;
                for (int d = 0; d < h; d++) {
                    var += (e[d] - mean) * (e[d] - mean) / h;
                }
                for (int d = 0; d < h; d++) {
                    out.putScalar(new long[]{i, j, d}, (e[d] - mean) / Math.sqrt(var + 1e-12) * g.getDouble(d) + be.getDouble(d));
                }
            }
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama-gqa"})
    void decoderHiddenStatesMatchPyTorch(String name) throws IOException {
        DecoderLM m = decoder(name);
        Map<String, INDArray> ref = SafeTensors.load(DECODERS.resolve(name).resolve("reference.safetensors"));
        INDArray ids = ref.get("input_ids");
        INDArray mask = ref.get("attention_mask");
        HeadOutput o;
        try (NoGrad ignored = NoGrad.enter()) {
            o = m.forward(BackboneInputs.of(m.backbone().embed(ids), mask).withHiddenStates(true));
        }
        List<Tensor> hs = o.backbone().hiddenStates();
        assertEquals(m.numLayers() + 1, hs.size());
        for (int i = 0; i < hs.size(); i++) {
            double e = maxAbsDiffMasked(hs.get(i).value(), ref.get("hidden_states." + i), mask);
            assertTrue(e <= REF_TOL, name + ": hidden state " + i + " max abs error " + e);
        }
        assertEquals(0.0, maxAbsDiff(hs.get(m.numLayers()).value(), o.backbone().lastHiddenState().value()), 0.0);
    }

    // ---- attention probabilities ---------------------------------------------------------------

    /** Every row of {@code p [B, H, T, S]} sums to 1 within {@code tol}. */
    static void rowsSumToOne(INDArray p, double tol, String what) {
        INDArray sums = p.castTo(DataType.DOUBLE).sum(3);
        double err = sums.sub(1.0).amaxNumber().doubleValue();
        assertTrue(err <= tol, what + ": row sums off by " + err);
    }

    /** {@code softmax_j(q_i·k_j · scale)} over visible keys, in double; {@code q [T, D]}, {@code k [S, D]}. */
    static double[][] softmaxByHand(double[][] q, double[][] k, double scale, boolean[][] visible) {
        double[][] p = new double[q.length][k.length];
        for (int i = 0; i < q.length; i++) {
            double max = Double.NEGATIVE_INFINITY;
            double[] s = new double[k.length];
            for (int j = 0; j < k.length; j++) {
                for (int d = 0; d < q[i].length; d++) {
                    s[j] += q[i][d] * k[j][d];
                }
                s[j] *= scale;
                if (visible[i][j]) {
                    max = Math.max(max, s[j]);
                }
            }
            double z = 0;
            for (int j = 0; j < k.length; j++) {
                p[i][j] = visible[i][j] ? Math.exp(s[j] - max) : 0;
                z += p[i][j];
            }
            for (int j = 0; j < k.length; j++) {
                p[i][j] /= z;
            }
        }
        return p;
    }

    /** Head {@code head} of {@code x·Wᵀ + b} (W {@code [out, in]}, or {@code [in, out]} with {@code fanInFanOut}) for row {@code bi}. */
    static double[][] projectHead(INDArray x, int bi, INDArray wt, INDArray bias, boolean fanInFanOut, int colOffset,
                                  int head, int headDim) {
        int t = (int) x.size(1);
        int in = (int) x.size(2);
        double[][] out = new double[t][headDim];
        for (int i = 0; i < t; i++) {
            for (int d = 0; d < headDim; d++) {
                int col = colOffset + head * headDim + d;
                double s = bias == null ? 0 : bias.getDouble(col);
                for (int c = 0; c < in; c++) {
                    s += x.getDouble(bi, i, c) * (fanInFanOut ? wt.getDouble(c, col) : wt.getDouble(col, c));
                }
                out[i][d] = s;
            }
        }
        return out;
    }

    @Test
    void bertAttentionProbabilitiesMatchAHandComputation() throws IOException {
        BertModel m = BertModel.load(BERT_TINY);
        Map<String, INDArray> ref = SafeTensors.load(BERT_TINY.resolve("reference.safetensors"));
        Map<String, INDArray> w = SafeTensors.load(BERT_TINY.resolve("model.safetensors"));
        INDArray ids = ref.get("input_ids");
        INDArray mask = ref.get("attention_mask");
        INDArray types = ref.get("token_type_ids");
        BackboneOutput o;
        BackboneOutput fused;
        try (NoGrad ignored = NoGrad.enter()) {
            BackboneInputs in = BackboneInputs.of(m.embed(ids), mask).withTokenTypeIds(types);
            o = m.forward(in.withAttentions(true).withHiddenStates(true));
            fused = m.forward(in);
        }
        assertEquals(m.numLayers(), o.attentions().size());
        // the composed path that yields the probabilities agrees with the fused one
        assertTrue(maxAbsDiff(o.lastHiddenState().value(), fused.lastHiddenState().value()) <= SAME_TOL);
        assertTrue(fused.attentions().isEmpty() && fused.hiddenStates().isEmpty());
        int b = (int) ids.size(0);
        int t = (int) ids.size(1);
        int heads = m.numAttentionHeads();
        int dh = m.headDim();
        for (Tensor p : o.attentions()) {
            assertArrayEquals(new long[]{b, heads, t, t}, p.shape());
            rowsSumToOne(p.value(), 1e-5, "bert");
        }
        // layer 0 by hand from the hand-computed embeddings
        INDArray x = bertEmbeddingsByHand(w, ids, types);
        String pre = "encoder.layer.0.attention.self.";
        double worst = 0;
        for (int bi = 0; bi < b; bi++) {
            boolean[][] visible = new boolean[t][t];
            for (int i = 0; i < t; i++) {
                for (int j = 0; j < t; j++) {
                    visible[i][j] = mask.getLong(bi, j) == 1;
                }
            }
            for (int h = 0; h < heads; h++) {
                double[][] q = projectHead(x, bi, w.get(pre + "query.weight"), w.get(pre + "query.bias"), false, 0, h, dh);
                double[][] k = projectHead(x, bi, w.get(pre + "key.weight"), w.get(pre + "key.bias"), false, 0, h, dh);
                double[][] want = softmaxByHand(q, k, 1.0 / Math.sqrt(dh), visible);
                for (int i = 0; i < t; i++) {
                    for (int j = 0; j < t; j++) {
                        worst = Math.max(worst, Math.abs(want[i][j] - o.attentions().get(0).value().getDouble(bi, h, i, j)));
                    }
                }
            }
        }
        assertTrue(worst <= SAME_TOL, "layer 0 attention vs hand computation: " + worst);
    }

    @Test
    void gpt2AttentionProbabilitiesMatchAHandComputation() throws IOException {
        DecoderLM m = decoder("gpt2");
        Map<String, INDArray> ref = SafeTensors.load(DECODERS.resolve("gpt2").resolve("reference.safetensors"));
        Map<String, INDArray> w = SafeTensors.load(DECODERS.resolve("gpt2").resolve("model.safetensors"));
        INDArray ids = ref.get("input_ids");
        INDArray mask = ref.get("attention_mask");
        HeadOutput o;
        INDArray fused;
        try (NoGrad ignored = NoGrad.enter()) {
            o = m.forward(BackboneInputs.of(m.backbone().embed(ids), mask).withAttentions(true));
            fused = m.forward(ids, mask).value();
        }
        assertTrue(maxAbsDiffMasked(o.logits().value(), fused, mask) <= SAME_TOL);
        Backbone bb = m.backbone();
        int b = (int) ids.size(0);
        int t = (int) ids.size(1);
        int dh = bb.headDim();
        int hidden = bb.hiddenSize();
        for (Tensor p : o.backbone().attentions()) {
            rowsSumToOne(p.value(), 1e-5, "gpt2");
        }
        // layer 0 by hand: ln_1 of the PyTorch embeddings (hidden_states.0), then c_attn (Conv1D [in, out])
        INDArray x0 = ref.get("hidden_states.0").castTo(DataType.DOUBLE);
        INDArray g = w.get(w.containsKey("h.0.ln_1.weight") ? "h.0.ln_1.weight" : "transformer.h.0.ln_1.weight").castTo(DataType.DOUBLE);
        String p0 = w.containsKey("h.0.ln_1.weight") ? "h.0." : "transformer.h.0.";
        INDArray be = w.get(p0 + "ln_1.bias").castTo(DataType.DOUBLE);
        INDArray x = x0.dup();
        for (int bi = 0; bi < b; bi++) {
            for (int i = 0; i < t; i++) {
                INDArray row = x0.get(NDArrayIndex.point(bi), NDArrayIndex.point(i), NDArrayIndex.all());
                double mean = row.meanNumber().doubleValue();
                double var = row.sub(mean).muli(row.sub(mean)).meanNumber().doubleValue();
                x.get(NDArrayIndex.point(bi), NDArrayIndex.point(i), NDArrayIndex.all())
                        .assign(row.sub(mean).divi(Math.sqrt(var + 1e-5)).muli(g).addi(be));
            }
        }
        INDArray cw = w.get(p0 + "attn.c_attn.weight").castTo(DataType.DOUBLE);
        INDArray cb = w.get(p0 + "attn.c_attn.bias").castTo(DataType.DOUBLE);
        double worst = 0;
        for (int bi = 0; bi < b; bi++) {
            boolean[][] visible = new boolean[t][t];
            for (int i = 0; i < t; i++) {
                for (int j = 0; j < t; j++) {
                    visible[i][j] = j <= i && mask.getLong(bi, j) == 1;
                }
            }
            for (int h = 0; h < bb.numAttentionHeads(); h++) {
                double[][] q = projectHead(x, bi, cw, cb, true, 0, h, dh);
                double[][] k = projectHead(x, bi, cw, cb, true, hidden, h, dh);
                double[][] want = softmaxByHand(q, k, 1.0 / Math.sqrt(dh), visible);
                for (int i = 0; i < t; i++) {
                    if (mask.getLong(bi, i) == 0) {
                        continue;   // a pad query's row is not compared (as HF's padded outputs)
                    }
                    for (int j = 0; j < t; j++) {
                        double got = o.backbone().attentions().get(0).value().getDouble(bi, h, i, j);
                        worst = Math.max(worst, Math.abs(want[i][j] - got));
                        if (j > i) {
                            assertEquals(0.0, got, 0.0, "causal: query " + i + " must not see key " + j);
                        }
                    }
                }
            }
        }
        assertTrue(worst <= 1e-4, "layer 0 attention vs hand computation: " + worst);
    }

    @Test
    void llamaAttentionsAreCausalDistributionsAndKeepTheOutput() throws IOException {
        DecoderLM m = decoder("llama-gqa");
        INDArray ids = randomIds(3, 2, 6, m.vocabSize());
        INDArray mask = Nd4j.createFromArray(new long[][]{{1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1}});
        HeadOutput o;
        INDArray fused;
        try (NoGrad ignored = NoGrad.enter()) {
            o = m.forward(BackboneInputs.of(m.backbone().embed(ids), mask).withAttentions(true));
            fused = m.forward(ids, mask).value();
        }
        assertTrue(maxAbsDiffMasked(o.logits().value(), fused, mask) <= SAME_TOL);
        assertEquals(m.numLayers(), o.backbone().attentions().size());
        for (Tensor p : o.backbone().attentions()) {
            assertArrayEquals(new long[]{2, m.backbone().numAttentionHeads(), 6, 6}, p.shape());
            rowsSumToOne(p.value(), 1e-5, "llama");
            for (int h = 0; h < p.size(1); h++) {
                for (int i = 2; i < 6; i++) {
                    for (int j = 0; j < 6; j++) {
                        if (j > i || j < 2) {
                            // row 1: keys 0, 1 are padding; every row: no key after the query
                            assertEquals(0.0, p.value().getDouble(1, h, i, j), 0.0);
                        }
                    }
                }
            }
        }
    }

    // ---- key/value prefix versus the KV cache; position offsets ------------------------------

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama-gqa", "qwen2"})
    void kvPrefixEqualsRunningThePrefixTokensThroughTheCache(String name) throws IOException {
        DecoderLM m = decoder(name);
        Backbone bb = m.backbone();
        int p = 3;
        int t = 4;
        INDArray ids = randomIds(11, 2, p + t, m.vocabSize());
        INDArray rest = cols(ids, p, p + t);
        try (NoGrad ignored = NoGrad.enter()) {
            INDArray full = m.forward(ids, null).value();
            KVCache[] caches = m.newCaches();
            m.forward(BackboneInputs.of(bb.embed(cols(ids, 0, p)), null).withCaches(caches));
            Tensor[] pk = new Tensor[bb.numLayers()];
            Tensor[] pv = new Tensor[bb.numLayers()];
            for (int i = 0; i < pk.length; i++) {
                pk[i] = Tensor.constant(caches[i].keys().dup());
                pv[i] = Tensor.constant(caches[i].values().dup());
                assertArrayEquals(new long[]{2, bb.numKeyValueHeads(), p, bb.headDim()}, pk[i].shape());
            }
            INDArray viaCache = m.forward(BackboneInputs.of(bb.embed(rest), null).withCaches(caches)).logits().value();
            BackboneInputs prefixed = BackboneInputs.of(bb.embed(rest), null).withPrefix(pk, pv);
            assertEquals(p, prefixed.resolvedPositionOffset(), "the offset counts the prefix");
            INDArray viaPrefix = m.forward(prefixed).logits().value();
            assertTrue(maxAbsDiff(viaPrefix, viaCache) <= SAME_TOL, name + ": prefix vs cache " + maxAbsDiff(viaPrefix, viaCache));
            // the whole sequence attends over other lengths (other fp32 summation orders): 1.08e-5 measured on llama-gqa
            assertTrue(maxAbsDiff(viaPrefix, steps(full, p, p + t)) <= 5 * SAME_TOL, name + ": prefix vs whole sequence "
                    + maxAbsDiff(viaPrefix, steps(full, p, p + t)));
            // a mask over prefix + tokens (Hugging Face's layout) of ones changes nothing
            INDArray ones = Nd4j.ones(DataType.INT64, 2, p + t);
            INDArray masked = m.forward(prefixed.withAttentionMask(ones)).logits().value();
            assertTrue(maxAbsDiff(masked, viaPrefix) <= SAME_TOL);
            // an explicit offset equal to the automatic one is the same computation
            assertEquals(0.0, maxAbsDiff(m.forward(prefixed.withPositionOffset(p)).logits().value(), viaPrefix), 0.0);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama-gqa"})
    void generationAfterAPrefixContinuesAtTheRightPosition(String name) throws IOException {
        DecoderLM m = decoder(name);
        Backbone bb = m.backbone();
        int p = 3;
        int t0 = 2;
        INDArray ids = randomIds(21, 2, p + t0 + 1, m.vocabSize());
        try (NoGrad ignored = NoGrad.enter()) {
            INDArray full = m.forward(ids, null).value();
            // the prefix: keys/values of the first p tokens
            KVCache[] warm = m.newCaches();
            m.forward(BackboneInputs.of(bb.embed(cols(ids, 0, p)), null).withCaches(warm));
            Tensor[] pk = new Tensor[bb.numLayers()];
            Tensor[] pv = new Tensor[bb.numLayers()];
            for (int i = 0; i < pk.length; i++) {
                pk[i] = Tensor.constant(warm[i].keys().dup());
                pv[i] = Tensor.constant(warm[i].values().dup());
            }
            // decoding under the prefix: the cache holds only the real tokens, the offset counts both
            KVCache[] caches = m.newCaches();
            m.forward(BackboneInputs.of(bb.embed(cols(ids, p, p + t0)), null).withPrefix(pk, pv).withCaches(caches));
            assertEquals(t0, caches[0].length(), "the prefix is not cached");
            BackboneInputs step = BackboneInputs.of(bb.embed(cols(ids, p + t0, p + t0 + 1)), null)
                    .withPrefix(pk, pv).withCaches(caches);
            assertEquals(p + t0, step.resolvedPositionOffset());
            INDArray next = m.forward(step).logits().value();
            double err = maxAbsDiff(next, steps(full, p + t0, p + t0 + 1));
            assertTrue(err <= SAME_TOL, name + ": step after prefix vs whole sequence " + err);
        }
    }

    @Test
    void gpt2PositionsFromAPaddedMaskCountThePrefix() throws IOException {
        // a left-padded row under a prefix: real tokens take positions P, P+1, ... as without padding
        DecoderLM m = decoder("gpt2");
        Backbone bb = m.backbone();
        int p = 2;
        INDArray ids = randomIds(31, 1, p + 3, m.vocabSize());
        try (NoGrad ignored = NoGrad.enter()) {
            KVCache[] warm = m.newCaches();
            m.forward(BackboneInputs.of(bb.embed(cols(ids, 0, p)), null).withCaches(warm));
            Tensor[] pk = new Tensor[bb.numLayers()];
            Tensor[] pv = new Tensor[bb.numLayers()];
            for (int i = 0; i < pk.length; i++) {
                pk[i] = Tensor.constant(warm[i].keys().dup());
                pv[i] = Tensor.constant(warm[i].values().dup());
            }
            INDArray plain = m.forward(BackboneInputs.of(bb.embed(cols(ids, p, p + 3)), null).withPrefix(pk, pv)).logits().value();
            INDArray padded = Nd4j.createFromArray(new long[][]{{0, ids.getLong(0, p), ids.getLong(0, p + 1), ids.getLong(0, p + 2)}});
            INDArray mask = Nd4j.createFromArray(new long[][]{{1, 1, 0, 1, 1, 1}});     // [1, P + 4]
            BackboneInputs in = BackboneInputs.of(bb.embed(padded), mask).withPrefix(pk, pv);
            assertArrayEquals(new long[]{p - 1, p, p + 1, p + 2}, in.positions()[0]);   // the pad's own position is irrelevant
            INDArray got = m.forward(in).logits().value();
            assertTrue(maxAbsDiff(steps(got, 1, 4), plain) <= SAME_TOL);
        }
    }

    @Test
    void positionsFollowTheMaskAsGenerateDoesAndCountThePrefix() {
        Tensor e = Tensor.constant(Nd4j.zeros(DataType.FLOAT, 2, 4, 8));
        // left-padded row 0, full row 1, no prefix, no cache: real tokens get cumsum(mask) − 1
        INDArray mask = Nd4j.createFromArray(new long[][]{{0, 0, 1, 1}, {1, 1, 1, 1}});
        long[][] pos = BackboneInputs.of(e, mask).positions();
        for (int b = 0; b < 2; b++) {
            long cumsum = 0;
            for (int j = 0; j < 4; j++) {
                cumsum += mask.getLong(b, j);
                if (mask.getLong(b, j) == 1) {
                    assertEquals(cumsum - 1, pos[b][j], "row " + b + " token " + j);
                }
            }
        }
        // without a mask: offset..offset+T−1 with the offset given explicitly
        assertArrayEquals(new long[]{5, 6, 7, 8}, BackboneInputs.of(e, null).withPositionOffset(5).positions()[1]);
        // a 3-token prefix in front, its mask columns included: the same positions shifted by 3
        Tensor[] pk = {Tensor.constant(Nd4j.zeros(DataType.FLOAT, 2, 1, 3, 2))};
        INDArray withPrefix = Nd4j.concat(1, Nd4j.ones(DataType.INT64, 2, 3), mask);
        BackboneInputs in = BackboneInputs.of(e, withPrefix).withPrefix(pk, pk);
        assertEquals(3, in.resolvedPositionOffset());
        long[][] shifted = in.positions();
        for (int b = 0; b < 2; b++) {
            for (int j = 0; j < 4; j++) {
                if (mask.getLong(b, j) == 1) {
                    assertEquals(pos[b][j] + 3, shifted[b][j]);
                }
            }
        }
    }

    // ---- gradients into input embeddings and prefix keys/values --------------------------------

    static Gpt2LMHeadModel tinyGpt2() {
        Gpt2Config c = new Gpt2Config(20, 16, 8, 2, 2, 16, "gelu_new", 1e-5, true, true, 0, 0, 0, 0.3, null, List.of());
        Gpt2LMHeadModel m = Gpt2LMHeadModel.random(c, 1);
        m.eval();
        return toDouble(m);
    }

    static LlamaForCausalLM tinyLlama() {
        // grouped-query: 4 query heads on 2 key/value heads of size 4, attention biases (qwen2)
        LlamaConfig c = new LlamaConfig("qwen2", 20, 8, 12, 2, 4, 2, 4, 1e-6, 10000.0, 32, false, false, false,
                null, 0.0, 0.3, null, List.of());
        LlamaForCausalLM m = LlamaForCausalLM.random(c, 2);
        m.eval();
        return toDouble(m);
    }

    /** Embeddings [2, 3, H] and a 2-token prefix per layer, with padding at the end of row 1. */
    static void decoderGradCheck(String name, DecoderLM m, boolean attentions) {
        Backbone bb = m.backbone();
        Rng r = new Rng(5);
        long[] kv = {2, bb.numKeyValueHeads(), 2, bb.headDim()};
        INDArray mask = Nd4j.createFromArray(new long[][]{{1, 1, 1, 1, 1}, {1, 1, 1, 1, 0}});   // [B, P + T]
        GradCheck.of(name, in -> {
            BackboneInputs inputs = BackboneInputs.of(in[0], mask)
                    .withPrefix(new Tensor[]{in[1], in[3]}, new Tensor[]{in[2], in[4]}).withAttentions(attentions);
            HeadOutput o = m.forward(inputs);
            return attentions ? o.backbone().attentions().get(1) : o.logits();
        }, randn(r, 2, 3, bb.hiddenSize()), randn(r, kv), randn(r, kv), randn(r, kv), randn(r, kv))
                // layer 1's probabilities do not depend on layer 1's prefix values
                .requiresGrad(true, true, true, true, !attentions).maxElements(12).check();
    }

    @Test
    void gradientsReachGpt2EmbeddingsAndPrefix() {
        decoderGradCheck("gpt2 embeddings + prefix", tinyGpt2(), false);
    }

    @Test
    void gradientsReachLlamaEmbeddingsAndPrefix() {
        decoderGradCheck("llama embeddings + prefix", tinyLlama(), false);
    }

    @Test
    void attentionProbabilitiesAreDifferentiable() {
        decoderGradCheck("llama attentions of layer 1", tinyLlama(), true);
    }

    @Test
    void gradientsReachBertEmbeddingsAndPrefixAndAttentions() {
        BertConfig c = BertConfig.builder().vocabSize(30).hiddenSize(8).numHiddenLayers(2).numAttentionHeads(2)
                .intermediateSize(16).maxPositionEmbeddings(16).typeVocabSize(2)
                .hiddenDropoutProb(0).attentionProbsDropoutProb(0).build();
        BertModel m = toDouble(new BertModel(c, true, new Rng(8)));
        m.eval();
        Rng r = new Rng(9);
        // a prefix on layer 0 only (layer 1's entry is null), so the mask covers the tokens alone [B, T]
        INDArray mask = Nd4j.createFromArray(new long[][]{{1, 1, 1}, {1, 1, 0}});
        for (boolean attentions : new boolean[]{false, true}) {
            GradCheck.of("bert embeddings + prefix" + (attentions ? " (attentions)" : ""), in -> {
                BackboneOutput o = m.forward(BackboneInputs.of(in[0], mask)
                        .withPrefix(new Tensor[]{in[1], null}, new Tensor[]{in[2], null}).withAttentions(attentions));
                return attentions ? o.attentions().get(1) : o.lastHiddenState();
            }, randn(r, 2, 3, 8), randn(r, 2, 2, 2, 4), randn(r, 2, 2, 2, 4)).maxElements(12).check();
        }
    }

    // ---- validation -----------------------------------------------------------------------------

    @Test
    void badInputsAreNamed() throws IOException {
        DecoderLM m = decoder("llama-gqa");
        Backbone bb = m.backbone();
        Tensor e = bb.embed(randomIds(1, 2, 3, m.vocabSize()));
        Tensor[] wrong = {Tensor.constant(Nd4j.zeros(DataType.FLOAT, 2, bb.numAttentionHeads(), 2, bb.headDim())), null};
        Tensor[] none = {null, null};
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class,
                () -> bb.forward(BackboneInputs.of(e, null).withPrefix(wrong, wrong)));
        assertTrue(x.getMessage().contains("layer 0") && x.getMessage().contains("[2, 2, 2, 8]"), x.getMessage());
        x = assertThrows(IllegalArgumentException.class,
                () -> bb.forward(BackboneInputs.of(e, Nd4j.ones(DataType.INT64, 2, 5))));
        assertTrue(x.getMessage().contains("attention mask") && x.getMessage().contains("[2, 5]"), x.getMessage());
        x = assertThrows(IllegalArgumentException.class,
                () -> bb.forward(BackboneInputs.of(e, null).withCaches(new KVCache[]{new KVCache()})));
        assertTrue(x.getMessage().contains("expected 2 layer caches"), x.getMessage());
        x = assertThrows(IllegalArgumentException.class,
                () -> bb.forward(BackboneInputs.of(e, null).withPositionOffset(bb.maxPositions() - 2)));
        assertTrue(x.getMessage().contains(String.valueOf(bb.maxPositions())), x.getMessage());
        x = assertThrows(IllegalArgumentException.class,
                () -> bb.forward(BackboneInputs.of(Tensor.constant(Nd4j.zeros(DataType.FLOAT, 2, 3, 5)), null)));
        assertTrue(x.getMessage().contains(Arrays.toString(new long[]{2, 3, 5})), x.getMessage());
        assertThrows(IllegalArgumentException.class, () -> BackboneInputs.of(e, null).withPrefix(none, null));
    }
}
