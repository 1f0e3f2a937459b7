package org.peft4j.core.model.bert;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.model.BackboneOutput;
import org.peft4j.core.model.HeadModel;
import org.peft4j.core.model.HeadOutput;
import org.peft4j.core.nn.AttentionContext;
import org.peft4j.core.nn.Dropout;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.tokenizer.BatchEncoding;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Hugging Face's {@code BertForTokenClassification}: children {@code bert} (no pooler, as
 * {@code add_pooling_layer=False}; a checkpoint's pooler weights are kept if present),
 * {@code dropout} and {@code classifier}; logits {@code [B, T, numLabels]}.
 */
public class BertForTokenClassification extends Module implements HeadModel {
    private final BertConfig config;

    private BertForTokenClassification(BertConfig config, BertModel bert, Module classifier, Rng rng) {
        this.config = config;
        registerModule("bert", bert);
        registerModule("dropout", new Dropout(config.effectiveClassifierDropout(), rng));
        registerModule("classifier", classifier);
    }

    /** A randomly initialised model (Hugging Face initialisation). */
    public BertForTokenClassification(BertConfig config, Rng rng) {
        this(config, new BertModel(config, false, rng), BertHeads.newClassifier(config, rng), rng);
    }

    /** A new N(0, 0.02) token head with the given labels on a (pretrained) encoder. */
    public static BertForTokenClassification withNewHead(BertModel bert, List<String> labels, Rng rng) {
        BertConfig c = bert.config().toBuilder().id2label(labels).build();
        return new BertForTokenClassification(c, bert, BertHeads.newClassifier(c, rng), rng);
    }

    /** A model holding a task checkpoint's weights, checked strictly. */
    public static BertForTokenClassification fromWeights(BertConfig config, Map<String, INDArray> weights, String source, Rng rng) {
        return BertHeads.fromWeights(config, weights, false, source, rng, BertForTokenClassification::new);
    }

    /** Loads a folder written by {@link #save} or by {@code transformers} (strict), in eval mode; dropout seeded with 0. */
    public static BertForTokenClassification load(Path dir) {
        return load(dir, new Rng(0));
    }

    public static BertForTokenClassification load(Path dir, Rng rng) {
        BertCheckpoint.Contents ck = BertCheckpoint.read(dir);
        BertForTokenClassification m = fromWeights(ck.config(), ck.weights(), ck.source(), rng);
        m.eval();
        return m;
    }

    public void save(Path dir) {
        BertCheckpoint.write(dir, config.toMap("BertForTokenClassification"), stateDict());
    }

    public BertConfig config() {
        return config;
    }

    public BertModel bert() {
        return child("bert", BertModel.class);
    }

    /** Logits {@code [B, T, numLabels]}. */
    public Tensor forward(INDArray inputIds, INDArray attentionMask, INDArray tokenTypeIds) {
        return head(bert().forward(inputIds, attentionMask, tokenTypeIds).lastHiddenState());
    }

    public Tensor forward(BatchEncoding batch) {
        return forward(batch.inputIdsArray(), batch.attentionMaskArray(), batch.typeIdsArray());
    }

    /** Logits {@code [B, T, numLabels]} from input embeddings (prompt methods). */
    public Tensor forwardEmbeds(Tensor inputsEmbeds, INDArray tokenTypeIds, AttentionContext ctx) {
        return head(bert().forwardEmbeds(inputsEmbeds, tokenTypeIds, ctx).lastHiddenState());
    }

    @Override
    public BertModel backbone() {
        return bert();
    }

    /** Logits {@code [B, T, numLabels]} through the backbone interface (hidden states / attentions on request). */
    @Override
    public HeadOutput forward(BackboneInputs inputs) {
        BackboneOutput o = bert().forward(inputs);
        return new HeadOutput(head(o.lastHiddenState()), o);
    }

    private Tensor head(Tensor h) {
        h = child("dropout", UnaryModule.class).forward(h);
        return child("classifier", UnaryModule.class).forward(h);
    }

    @Override
    protected String describe() {
        return "BertForTokenClassification(labels=" + config.numLabels() + ")";
    }
}
