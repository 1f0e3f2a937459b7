package org.peft4j.core.model.bert;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.Backbone;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.model.BackboneOutput;
import org.peft4j.core.model.Pooling;
import org.peft4j.core.model.WeightSource;
import org.peft4j.core.nn.AttentionContext;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.ModuleList;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.tokenizer.BatchEncoding;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Hugging Face's {@code BertModel}: embeddings, a stack of post-LayerNorm encoder blocks and an
 * optional pooler ({@code tanh(dense(h[CLS]))}). Parameter names are exactly the Hugging Face
 * state-dict keys ({@code embeddings.word_embeddings.weight},
 * {@code encoder.layer.0.attention.self.query.weight}, …, {@code pooler.dense.bias}).
 *
 * <p>Children: {@code embeddings} ({@link BertEmbeddings}), {@code encoder} (whose child
 * {@code layer} is a {@link ModuleList} of {@link BertLayer}) and, when present, {@code pooler}.
 */
public class BertModel extends Module implements Backbone {
    private static final Logger LOG = LoggerFactory.getLogger(BertModel.class);

    private final BertConfig config;
    private final Rng dropoutRng;

    /** The output of a forward pass. */
    public record Output(Tensor lastHiddenState, Tensor pooledOutput) {
    }

    /**
     * A randomly initialised model as Hugging Face initialises one (N(0, 0.02) weights and
     * embeddings with a zero padding row, zero biases, unit LayerNorm scales).
     *
     * @param addPoolingLayer whether to build {@code pooler.dense}
     * @param rng             initial weights, then dropout masks (kept and used by every dropout)
     */
    public BertModel(BertConfig config, boolean addPoolingLayer, Rng rng) {
        this(config, addPoolingLayer, WeightSource.random(rng), rng);
    }

    BertModel(BertConfig config, boolean addPoolingLayer, WeightSource w, Rng dropoutRng) {
        if (dropoutRng == null) {
            throw new IllegalArgumentException("BertModel needs an Rng for its dropout masks (explicit seed)");
        }
        this.config = config;
        this.dropoutRng = dropoutRng;
        registerModule("embeddings", new BertEmbeddings(config, w, dropoutRng));
        ModuleList layers = new ModuleList();
        for (int i = 0; i < config.numHiddenLayers(); i++) {
            layers.add(new BertLayer(config, i, w, dropoutRng));
        }
        registerModule("encoder", new Encoder(layers));
        if (addPoolingLayer) {
            registerModule("pooler", new Pooler(config, w));
        }
    }

    /**
     * A model holding the given weights (Hugging Face BertModel keys; an optional {@code bert.}
     * prefix and the buffers in {@link BertKeys#IGNORED_BUFFERS} are accepted). Strict: a missing
     * or unexpected key, or a shape mismatch, is an {@link IllegalArgumentException} naming it.
     * The pooler is built when the weights contain it. The arrays are used as they are (not
     * copied) when they are fp32 and contiguous.
     *
     * @param source names the weights' origin in error messages
     * @param rng    dropout masks
     */
    public static BertModel fromWeights(BertConfig config, Map<String, INDArray> weights, String source, Rng rng) {
        return fromWeights(config, weights, source, rng, false);
    }

    /** As {@link #fromWeights} but copying every array (for a shared map, such as a cache). */
    public static BertModel fromWeightsCopy(BertConfig config, Map<String, INDArray> weights, String source, Rng rng) {
        return fromWeights(config, weights, source, rng, true);
    }

    private static BertModel fromWeights(BertConfig config, Map<String, INDArray> weights, String source, Rng rng, boolean copy) {
        Map<String, INDArray> keyed = BertCheckpoint.normalizeKeys(weights, source);
        boolean pooler = keyed.containsKey("pooler.dense.weight") || keyed.containsKey("pooler.dense.bias");
        BertCheckpoint.checkKeys(BertKeys.expectedShapes(config, pooler), keyed, source);
        return new BertModel(config, pooler, new MapSource(keyed, copy), rng);
    }

    /**
     * Loads a Hugging Face checkpoint folder ({@code config.json} + {@code model.safetensors} or
     * shards), strictly (see {@link #fromWeights}), in eval mode; dropout masks seeded with 0.
     */
    public static BertModel load(Path dir) {
        return load(dir, new Rng(0));
    }

    /** As {@link #load(Path)} with the dropout masks drawn from {@code rng}. */
    public static BertModel load(Path dir, Rng rng) {
        BertCheckpoint.Contents ck = BertCheckpoint.read(dir);
        BertModel m = fromWeights(ck.config(), ck.weights(), ck.source(), rng);
        m.eval();
        return m;
    }

    /**
     * Writes {@code config.json} and {@code model.safetensors} into {@code dir} (created if
     * needed), each file atomically; the folder loads back with {@link #load(Path)} and with
     * {@code transformers.BertModel.from_pretrained}.
     */
    public void save(Path dir) {
        BertCheckpoint.write(dir, config.toMap("BertModel"), stateDict());
    }

    public BertConfig config() {
        return config;
    }

    public boolean hasPooler() {
        return child("pooler") != null;
    }

    /** The generator every dropout of this model draws from (save its state for exact resume). */
    public Rng dropoutRng() {
        return dropoutRng;
    }

    public BertEmbeddings embeddings() {
        return child("embeddings", BertEmbeddings.class);
    }

    /** The encoder blocks {@code encoder.layer.*}. */
    public ModuleList layers() {
        return (ModuleList) get("encoder.layer");
    }

    /** Encoder block {@code i}. */
    public BertLayer layer(int i) {
        return layers().get(i, BertLayer.class);
    }

    // ---- forward ---------------------------------------------------------------------------

    /**
     * @param inputIds      {@code [B, T]} integer token ids
     * @param attentionMask {@code [B, T]}, 1 for real tokens and 0 for padding (null = no padding)
     * @param tokenTypeIds  {@code [B, T]} segment ids, or null for zeros
     * @throws IllegalArgumentException when T exceeds {@code max_position_embeddings} or shapes disagree
     */
    public Output forward(INDArray inputIds, INDArray attentionMask, INDArray tokenTypeIds) {
        if (inputIds == null || inputIds.rank() != 2) {
            throw new IllegalArgumentException("input ids must be [batch, seq], got "
                    + (inputIds == null ? "null" : Arrays.toString(inputIds.shape())));
        }
        BertEmbeddings.checkLength(inputIds.size(1), 0, config);
        INDArray mask = checkMask(attentionMask, inputIds.size(0), inputIds.size(1));
        Tensor h = forward(BackboneInputs.of(embed(inputIds), mask).withTokenTypeIds(tokenTypeIds)).lastHiddenState();
        return new Output(h, pooledOutput(h));
    }

    /** A tokenized, padded batch. */
    public Output forward(BatchEncoding batch) {
        return forward(batch.inputIdsArray(), batch.attentionMaskArray(), batch.typeIdsArray());
    }

    /** Word embeddings {@code [B, T, hidden]} of ids {@code [B, T]} (no positions, token types or LayerNorm). */
    @Override
    public Tensor embed(INDArray ids) {
        if (ids == null || ids.rank() != 2) {
            throw new IllegalArgumentException("input ids must be [batch, seq], got "
                    + (ids == null ? "null" : Arrays.toString(ids.shape())));
        }
        return embeddings().wordEmbeddings(ids);
    }

    /**
     * The encoder on {@link BackboneInputs}: positions {@code offset..offset+T−1} (offset
     * {@link BackboneInputs#resolvedPositionOffset}), token types and the embedding LayerNorm
     * over the whole input, then every layer with the padding mask and any per-layer prefix.
     * Hidden states on request: the embedding output and each layer's output ({@code L + 1});
     * attentions: each layer's probabilities {@code [B, heads, T, P + T]}. The pooler is not
     * applied ({@link #pooledOutput}).
     */
    @Override
    public BackboneOutput forward(BackboneInputs inputs) {
        inputs.check(this);
        AttentionContext ctx = inputs.attentionContext(numLayers());
        List<Tensor> hidden = inputs.outputHiddenStates() ? new ArrayList<>() : null;
        Tensor h = encode(inputs.inputEmbeddings(), inputs.tokenTypeIds(), ctx, hidden);
        return new BackboneOutput(h, hidden, ctx.recordedAttentions());
    }

    /**
     * The general form: input embeddings {@code [B, T, hidden]} (word embeddings, possibly with
     * virtual tokens in front), token types, and an attention context with the key padding mask
     * {@code [B, T]} (or {@code [B, P + T]} with a KV prefix) and any per-layer prefixes. Positions
     * start at {@code ctx.positionOffset()}.
     */
    public Output forwardEmbeds(Tensor inputsEmbeds, INDArray tokenTypeIds, AttentionContext ctx) {
        Tensor h = encode(inputsEmbeds, tokenTypeIds, ctx == null ? AttentionContext.empty() : ctx, null);
        return new Output(h, pooledOutput(h));
    }

    /** Embeddings then the layers; {@code hidden}, when given, receives the embedding output and each layer's output. */
    private Tensor encode(Tensor inputsEmbeds, INDArray tokenTypeIds, AttentionContext ctx, List<Tensor> hidden) {
        Tensor h = embeddings().forward(inputsEmbeds, tokenTypeIds, ctx.positionOffset());
        if (hidden != null) {
            hidden.add(h);
        }
        ModuleList layers = layers();
        for (int i = 0; i < layers.size(); i++) {
            h = layers.get(i, BertLayer.class).forward(h, ctx);
            if (hidden != null) {
                hidden.add(h);
            }
        }
        return h;
    }

    /** {@code tanh(pooler.dense(h[:, 0]))} {@code [B, hidden]} of a last hidden state, or null without a pooler. */
    public Tensor pooledOutput(Tensor lastHiddenState) {
        Module pooler = child("pooler");
        return pooler == null ? null : ((UnaryModule) pooler).forward(lastHiddenState);
    }

    @Override
    public int hiddenSize() {
        return config.hiddenSize();
    }

    @Override
    public int numLayers() {
        return config.numHiddenLayers();
    }

    @Override
    public int numAttentionHeads() {
        return config.numAttentionHeads();
    }

    /** BERT has no grouped-query attention: as many key/value heads as query heads. */
    @Override
    public int numKeyValueHeads() {
        return config.numAttentionHeads();
    }

    @Override
    public int headDim() {
        return config.hiddenSize() / config.numAttentionHeads();
    }

    @Override
    public int maxPositions() {
        return config.maxPositionEmbeddings();
    }

    @Override
    public int vocabSize() {
        return config.vocabSize();
    }

    @Override
    public boolean isCausal() {
        return false;
    }

    /**
     * Sentence embeddings: the mean of the last hidden states over real tokens, optionally L2
     * normalised (sentence-transformers' MiniLM / mean-pooling recipe) → {@code [B, hidden]}.
     */
    public Tensor sentenceEmbedding(BatchEncoding batch, boolean normalize) {
        Tensor h = forward(batch).lastHiddenState();
        Tensor e = Pooling.mean(h, batch.attentionMaskArray());
        return normalize ? Pooling.l2Normalize(e) : e;
    }

    static INDArray checkMask(INDArray mask, long b, long t) {
        if (mask == null) {
            return null;
        }
        if (mask.rank() != 2 || mask.size(0) != b || mask.size(1) != t) {
            throw new IllegalArgumentException("attention mask " + Arrays.toString(mask.shape())
                    + " does not match input ids [" + b + ", " + t + "]");
        }
        return mask;
    }

    @Override
    protected String describe() {
        return "BertModel(layers=" + config.numHiddenLayers() + ", hidden=" + config.hiddenSize() + ", heads="
                + config.numAttentionHeads() + ")";
    }

    /** {@code encoder}: holds the {@code layer} list. */
    public static class Encoder extends Module {
        Encoder(ModuleList layers) {
            registerModule("layer", layers);
        }
    }

    /** {@code pooler}: {@code tanh(dense(h[:, 0]))}, {@code [B, T, H]} → {@code [B, H]}. */
    public static class Pooler extends Module implements UnaryModule {
        Pooler(BertConfig c, WeightSource w) {
            registerModule("dense", BertLayer.linear(w, "pooler.dense", c.hiddenSize(), c.hiddenSize()));
        }

        @Override
        public Tensor forward(Tensor hidden) {
            return Ops.tanh(child("dense", UnaryModule.class).forward(Pooling.first(hidden)));
        }
    }
}
