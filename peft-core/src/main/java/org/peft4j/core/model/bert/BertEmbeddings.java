package org.peft4j.core.model.bert;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.model.WeightSource;
import org.peft4j.core.nn.Dropout;
import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.EmbeddingLayer;
import org.peft4j.core.nn.LayerNorm;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;

/**
 * BERT's input layer ({@code embeddings.*}): word + absolute position + token type embeddings,
 * then LayerNorm and dropout. Children: {@code word_embeddings}, {@code position_embeddings},
 * {@code token_type_embeddings}, {@code LayerNorm}, {@code dropout}.
 */
public class BertEmbeddings extends Module {
    private final BertConfig config;

    BertEmbeddings(BertConfig c, WeightSource w, Rng dropoutRng) {
        this.config = c;
        long h = c.hiddenSize();
        registerModule("word_embeddings", new Embedding(
                w.get("embeddings.word_embeddings.weight", new long[]{c.vocabSize(), h}, WeightSource.Init.NORMAL,
                        BertLayer.INIT_STD, c.padTokenId()),
                c.padTokenId()));
        registerModule("position_embeddings", new Embedding(
                w.get("embeddings.position_embeddings.weight", new long[]{c.maxPositionEmbeddings(), h}, WeightSource.Init.NORMAL,
                        BertLayer.INIT_STD), -1));
        registerModule("token_type_embeddings", new Embedding(
                w.get("embeddings.token_type_embeddings.weight", new long[]{c.typeVocabSize(), h}, WeightSource.Init.NORMAL,
                        BertLayer.INIT_STD), -1));
        registerModule("LayerNorm", BertLayer.layerNorm(w, "embeddings.LayerNorm", c));
        registerModule("dropout", new Dropout(c.hiddenDropoutProb(), dropoutRng));
    }

    /** Word embeddings of integer ids {@code [B, T]} → {@code [B, T, hidden]} (what prompt methods prepend to). */
    public Tensor wordEmbeddings(INDArray inputIds) {
        return child("word_embeddings", EmbeddingLayer.class).forward(inputIds);
    }

    /**
     * {@code LayerNorm(inputsEmbeds + tokenType + position)}, dropout.
     *
     * @param inputsEmbeds   {@code [B, T, hidden]}
     * @param tokenTypeIds   {@code [B, T]} integers, or null for all zeros
     * @param positionOffset position of the first token (the prefix length under prefix tuning, as Hugging Face does)
     */
    public Tensor forward(Tensor inputsEmbeds, INDArray tokenTypeIds, long positionOffset) {
        if (inputsEmbeds.rank() != 3 || inputsEmbeds.size(2) != config.hiddenSize()) {
            throw new IllegalArgumentException("input embeddings must be [batch, seq, " + config.hiddenSize() + "], got "
                    + Arrays.toString(inputsEmbeds.shape()));
        }
        long b = inputsEmbeds.size(0);
        long t = inputsEmbeds.size(1);
        checkLength(t, positionOffset, config);
        INDArray types;
        if (tokenTypeIds == null) {
            types = Nd4j.zeros(DataType.INT64, 1, 1);   // row 0, broadcast over [B, T]
        } else {
            if (tokenTypeIds.rank() != 2 || tokenTypeIds.size(0) != b || tokenTypeIds.size(1) != t) {
                throw new IllegalArgumentException("token type ids " + Arrays.toString(tokenTypeIds.shape())
                        + " do not match the input [" + b + ", " + t + "]");
            }
            types = tokenTypeIds;
        }
        INDArray positions = Nd4j.arange(positionOffset, positionOffset + t).castTo(DataType.INT64);   // [T]
        Tensor e = Ops.add(inputsEmbeds, child("token_type_embeddings", EmbeddingLayer.class).forward(types));
        e = Ops.add(e, child("position_embeddings", EmbeddingLayer.class).forward(positions));            // [T, H] broadcasts
        e = child("LayerNorm", UnaryModule.class).forward(e);
        return child("dropout", UnaryModule.class).forward(e);
    }

    static void checkLength(long t, long offset, BertConfig c) {
        if (t + offset > c.maxPositionEmbeddings()) {
            throw new IllegalArgumentException("sequence length " + (t + offset)
                    + (offset > 0 ? " (" + offset + " offset + " + t + " tokens)" : "")
                    + " exceeds max_position_embeddings " + c.maxPositionEmbeddings());
        }
    }
}
