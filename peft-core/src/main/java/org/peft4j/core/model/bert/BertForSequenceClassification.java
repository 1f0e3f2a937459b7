package org.peft4j.core.model.bert;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.model.BackboneOutput;
import org.peft4j.core.model.HeadModel;
import org.peft4j.core.model.HeadOutput;
import org.peft4j.core.model.Pooling;
import org.peft4j.core.nn.AttentionContext;
import org.peft4j.core.nn.Dropout;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.tokenizer.BatchEncoding;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Hugging Face's {@code BertForSequenceClassification}: children {@code bert} ({@link BertModel}),
 * {@code dropout} and {@code classifier} ({@code Linear(hidden, numLabels)}), so the state-dict
 * keys are {@code bert.…} and {@code classifier.weight/bias}.
 *
 * <p>How a sequence becomes one vector is {@link BertConfig#classifierPooling()}: the pooler
 * (Hugging Face's default; the encoder must have {@code pooler.dense}), the masked mean of the
 * last hidden states (for checkpoints without a pooler, such as the bundled MiniLM and BGE), or
 * the {@code [CLS]} state as is.
 */
public class BertForSequenceClassification extends Module implements HeadModel, org.peft4j.core.model.SequenceClassifier {
    private org.peft4j.core.model.InputPreparation inputPreparation;
    private final BertConfig config;

    private BertForSequenceClassification(BertConfig config, BertModel bert, Module classifier, Rng rng) {
        if (config.classifierPooling() == BertConfig.Pooling.POOLER && !bert.hasPooler()) {
            throw new IllegalArgumentException("classifier_pooling 'pooler' needs an encoder with pooler.dense weights;"
                    + " this one has none (use Pooling.MEAN or CLS)");
        }
        this.config = config;
        registerModule("bert", bert);
        registerModule("dropout", new Dropout(config.effectiveClassifierDropout(), rng));
        registerModule("classifier", classifier);
    }

    /** A randomly initialised model (Hugging Face initialisation), with a pooler when the config pools with it. */
    public BertForSequenceClassification(BertConfig config, Rng rng) {
        this(config, new BertModel(config, config.classifierPooling() == BertConfig.Pooling.POOLER, rng),
                BertHeads.newClassifier(config, rng), rng);
    }

    /**
     * A new classification head on a (pretrained) encoder: {@code labels} name the classes and
     * {@code pooling} picks the sequence vector; the head is N(0, 0.02) with zero bias, drawn
     * from {@code rng}, which also drives the head's dropout.
     */
    public static BertForSequenceClassification withNewHead(BertModel bert, List<String> labels,
                                                             BertConfig.Pooling pooling, Rng rng) {
        BertConfig c = bert.config().toBuilder().id2label(labels).classifierPooling(pooling).build();
        return new BertForSequenceClassification(c, bert, BertHeads.newClassifier(c, rng), rng);
    }

    /** As {@link #withNewHead(BertModel, List, BertConfig.Pooling, Rng)} with labels {@code LABEL_0..n-1}. */
    public static BertForSequenceClassification withNewHead(BertModel bert, int numLabels, BertConfig.Pooling pooling, Rng rng) {
        return withNewHead(bert, BertConfig.defaultLabels(numLabels), pooling, rng);
    }

    /**
     * A model holding a task checkpoint's weights ({@code bert.*}, {@code classifier.*}),
     * checked strictly (missing, unexpected keys and shape mismatches are named).
     */
    public static BertForSequenceClassification fromWeights(BertConfig config, Map<String, INDArray> weights,
                                                            String source, Rng rng) {
        return BertHeads.fromWeights(config, weights, config.classifierPooling() == BertConfig.Pooling.POOLER, source, rng,
                BertForSequenceClassification::new);
    }

    /** Loads a folder written by {@link #save} or by {@code transformers} (strict), in eval mode; dropout seeded with 0. */
    public static BertForSequenceClassification load(Path dir) {
        return load(dir, new Rng(0));
    }

    public static BertForSequenceClassification load(Path dir, Rng rng) {
        BertCheckpoint.Contents ck = BertCheckpoint.read(dir);
        BertForSequenceClassification m = fromWeights(ck.config(), ck.weights(), ck.source(), rng);
        m.eval();
        return m;
    }

    /** Writes {@code config.json} ({@code architectures: BertForSequenceClassification}) and {@code model.safetensors}. */
    public void save(Path dir) {
        BertCheckpoint.write(dir, config.toMap("BertForSequenceClassification"), stateDict());
    }

    public BertConfig config() {
        return config;
    }

    public BertModel bert() {
        return child("bert", BertModel.class);
    }

    /** Logits {@code [B, numLabels]}. */
    public Tensor forward(INDArray inputIds, INDArray attentionMask, INDArray tokenTypeIds) {
        if (inputPreparation != null) {   // a prompt method: virtual tokens / prefix through the Backbone path
            return forward(BackboneInputs.of(bert().embed(inputIds), attentionMask).withTokenTypeIds(tokenTypeIds)).logits();
        }
        BertModel.Output out = bert().forward(inputIds, attentionMask, tokenTypeIds);
        return head(out, attentionMask);
    }

    /** {@link #forward(INDArray, INDArray, INDArray)}: logits {@code [B, numLabels]}. */
    @Override
    public Tensor classify(INDArray inputIds, INDArray attentionMask, INDArray tokenTypeIds) {
        return forward(inputIds, attentionMask, tokenTypeIds);
    }

    /** {@code id2label} of the config. */
    @Override
    public List<String> labels() {
        return config.id2label();
    }

    @Override
    public String headName() {
        return "classifier";
    }

    /** Logits {@code [B, numLabels]} of a tokenized batch. */
    public Tensor forward(BatchEncoding batch) {
        return forward(batch.inputIdsArray(), batch.attentionMaskArray(), batch.typeIdsArray());
    }

    /**
     * Logits from input embeddings {@code [B, T, hidden]} (prompt methods). Mean pooling uses the
     * last T columns of the context's padding mask (prefix columns are not hidden states).
     */
    public Tensor forwardEmbeds(Tensor inputsEmbeds, INDArray tokenTypeIds, AttentionContext ctx) {
        BertModel.Output out = bert().forwardEmbeds(inputsEmbeds, tokenTypeIds, ctx);
        return head(out, lastColumns(ctx == null ? null : ctx.keyPaddingMask(), inputsEmbeds.size(1)));
    }

    @Override
    public void setInputPreparation(org.peft4j.core.model.InputPreparation preparation) {
        this.inputPreparation = preparation;
    }

    @Override
    public org.peft4j.core.model.InputPreparation inputPreparation() {
        return inputPreparation;
    }

    @Override
    public BertModel backbone() {
        return bert();
    }

    /**
     * Logits {@code [B, numLabels]} through the {@link org.peft4j.core.model.Backbone} interface,
     * with whatever hidden states and attentions the inputs ask for. Mean pooling uses the last
     * T columns of the mask (prefix columns are not hidden states).
     */
    @Override
    public HeadOutput forward(BackboneInputs userInputs) {
        BackboneInputs inputs = inputPreparation == null ? userInputs : inputPreparation.prepare(bert(), userInputs);
        BackboneOutput o = bert().forward(inputs);
        Tensor h = o.lastHiddenState();
        BertModel.Output out = new BertModel.Output(h, bert().pooledOutput(h));
        return new HeadOutput(head(out, lastColumns(inputs.attentionMask(), h.size(1))), o);
    }

    /** The last {@code t} columns of a padding mask {@code [B, P + t]} (null stays null). */
    private static INDArray lastColumns(INDArray mask, long t) {
        if (mask != null && mask.size(1) != t) {
            return mask.get(org.nd4j.linalg.indexing.NDArrayIndex.all(),
                    org.nd4j.linalg.indexing.NDArrayIndex.interval(mask.size(1) - t, mask.size(1)));
        }
        return mask;
    }

    /** The sequence vector {@code [B, hidden]} chosen by the config's pooling. */
    public Tensor pool(BertModel.Output out, INDArray attentionMask) {
        Tensor h = out.lastHiddenState();
        switch (config.classifierPooling()) {
            case POOLER:
                return out.pooledOutput();
            case CLS:
                return Pooling.first(h);
            default:
                INDArray mask = attentionMask != null ? attentionMask
                        : org.nd4j.linalg.factory.Nd4j.ones(org.nd4j.linalg.api.buffer.DataType.INT64, h.size(0), h.size(1));
                if (mask.size(0) != h.size(0) || mask.size(1) != h.size(1)) {
                    throw new IllegalArgumentException("attention mask " + Arrays.toString(mask.shape())
                            + " does not match hidden states " + Arrays.toString(h.shape()));
                }
                return Pooling.mean(h, mask);
        }
    }

    private Tensor head(BertModel.Output out, INDArray mask) {
        Tensor pooled = pool(out, mask);
        pooled = child("dropout", UnaryModule.class).forward(pooled);
        return child("classifier", UnaryModule.class).forward(pooled);
    }

    @Override
    protected String describe() {
        return "BertForSequenceClassification(labels=" + config.numLabels() + ", pooling="
                + config.classifierPooling().name().toLowerCase(java.util.Locale.ROOT) + ")";
    }
}
