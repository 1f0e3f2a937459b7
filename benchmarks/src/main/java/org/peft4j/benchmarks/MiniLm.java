package org.peft4j.benchmarks;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.model.ModelZoo;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.model.bert.BertOnnxImport;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.peft.TaskType;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.train.AdamW;
import org.peft4j.lora.LoraConfig;
import org.peft4j.quant.QLora;
import org.peft4j.quant.QuantConfig;
import org.peft4j.quant.Quantizer;

import java.util.Map;

/**
 * The benchmark workload, shared by the comparison harness, its workers and the profilers: the
 * bundled all-MiniLM-L6-v2 weights in a {@link BertForSequenceClassification} (mean pooling,
 * two labels), a fixed random batch, and one AdamW training step in each mode.
 *
 * <p>The PyTorch script {@code scripts/bench/torch_minilm.py} builds exactly this model from the
 * folder {@link #exportFor} writes, so both sides start from the same weights.
 */
public final class MiniLm {
    /** Defaults of the comparison: batch 16 × 128 tokens, LoRA r 8 (alpha 16) on query/value. */
    public static final int BATCH = 16;
    public static final int SEQ = 128;
    public static final int RANK = 8;
    public static final int ALPHA = 16;
    public static final long SEED = 42;
    public static final double LR = 5e-5;
    public static final double WEIGHT_DECAY = 0.01;
    public static final int NUM_LABELS = 2;

    private MiniLm() {
    }

    /** The training modes of the harness. */
    public enum Mode { FULL, LORA, QLORA }

    /** Token ids {@code [B, T]} (INT64, uniform over ordinary word pieces), an all-ones mask and labels {@code [B]}. */
    public record Batch(INDArray inputIds, INDArray attentionMask, INDArray labels) {
        public long tokens() {
            return inputIds.length();
        }
    }

    /** A reproducible batch: the same ids for the same seed (the PyTorch side reads them from the export folder). */
    public static Batch batch(int b, int t, int vocab, long seed) {
        Rng rng = new Rng(seed);
        long[] ids = new long[b * t];
        for (int i = 0; i < ids.length; i++) {
            // [CLS] ... [SEP] framing; the body avoids the special and unused ids (< 1000)
            int col = i % t;
            ids[i] = col == 0 ? 101 : col == t - 1 ? 102 : 1000 + rng.nextInt(vocab - 1000);
        }
        long[] labels = new long[b];
        for (int i = 0; i < b; i++) {
            labels[i] = rng.nextInt(NUM_LABELS);
        }
        INDArray idArr = Nd4j.createFromArray(ids).reshape('c', b, t);
        INDArray mask = Nd4j.ones(DataType.INT64, b, t);
        return new Batch(idArr, mask, Nd4j.createFromArray(labels));
    }

    /** The MiniLM configuration with both dropouts set to {@code dropout} (the checkpoint's own is 0.1). */
    public static BertConfig config(double dropout) {
        BertConfig c = ModelZoo.weights(ModelZoo.MINILM_L6).config();
        return c.toBuilder().hiddenDropoutProb(dropout).attentionProbsDropoutProb(dropout).build();
    }

    /** A fresh encoder with its own copy of the bundled weights. */
    public static BertModel encoder(BertConfig config, long seed) {
        BertOnnxImport.BertWeights w = ModelZoo.weights(ModelZoo.MINILM_L6);
        return BertModel.fromWeightsCopy(config, w.weights(), "all-minilm-l6-v2", new Rng(seed));
    }

    /** The classifier (mean pooling, 2 labels, head drawn from {@code seed}) in training mode. */
    public static BertForSequenceClassification classifier(BertConfig config, long seed) {
        BertModel bert = encoder(config, seed);
        BertForSequenceClassification m = BertForSequenceClassification.withNewHead(bert, NUM_LABELS,
                BertConfig.Pooling.MEAN, new Rng(seed + 1));
        m.train();
        return m;
    }

    /** LoRA r {@link #RANK} on query/value; the classifier head is trained too (PEFT's SEQ_CLS default). */
    public static LoraConfig loraConfig() {
        return LoraConfig.builder().r(RANK).loraAlpha(ALPHA).loraDropout(0.0)
                .targetModules("query", "value").taskType(TaskType.SEQ_CLS).modulesToSave("classifier")
                .seed(SEED).build();
    }

    /** One training step's moving parts. */
    public static final class Trainer {
        public final Mode mode;
        public final BertForSequenceClassification model;
        public final PeftModel peft;
        public final AdamW optimizer;
        public final Map<String, Parameter> trainable;

        Trainer(Mode mode, BertForSequenceClassification model, PeftModel peft, Map<String, Parameter> trainable) {
            this.mode = mode;
            this.model = model;
            this.peft = peft;
            this.trainable = trainable;
            this.optimizer = AdamW.builder(trainable).lr(LR).weightDecay(WEIGHT_DECAY).build();
        }

        /** forward, cross-entropy, backward, AdamW update, zero grad; returns the loss. */
        public float step(Batch batch) {
            Tensor logits = model.forward(batch.inputIds(), batch.attentionMask(), null);
            Tensor loss = Ops.crossEntropy(logits, batch.labels(), Ops.Reduction.MEAN);
            float l = loss.item();
            loss.backward();
            optimizer.step();
            optimizer.zeroGrad();
            return l;
        }

        public long trainableParameters() {
            long n = 0;
            for (Parameter p : trainable.values()) {
                n += p.length();
            }
            return n;
        }
    }

    /** LoRA r {@link #RANK} on query/value of a bare encoder (inference benchmarks). */
    public static LoraConfig loraConfigEncoder() {
        return LoraConfig.builder().r(RANK).loraAlpha(ALPHA).loraDropout(0.0)
                .targetModules("query", "value").seed(SEED).build();
    }

    /** A trainer for {@code mode} on a fresh model. */
    public static Trainer trainer(Mode mode, BertConfig config, long seed) {
        return trainer(mode, classifier(config, seed));
    }

    /** A trainer for {@code mode} on {@code m} (put in training mode; LoRA modes wrap it in place). */
    public static Trainer trainer(Mode mode, BertForSequenceClassification m) {
        m.train();
        switch (mode) {
            case FULL -> {
                return new Trainer(mode, m, null, m.namedTrainableParameters());
            }
            case LORA -> {
                PeftModel pm = Peft.apply(m, loraConfig());
                return new Trainer(mode, m, pm, pm.trainableParameters());
            }
            case QLORA -> {
                // NF4 (block 64, double quantization) on every encoder linear layer, the classifier kept fp32
                Quantizer.quantize(m, QuantConfig.nf4());
                PeftModel pm = QLora.apply(m, loraConfig());
                return new Trainer(mode, m, pm, pm.trainableParameters());
            }
            default -> throw new IllegalArgumentException(mode.name());
        }
    }
}
