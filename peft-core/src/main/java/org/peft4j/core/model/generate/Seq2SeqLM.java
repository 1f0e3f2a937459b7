package org.peft4j.core.model.generate;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.nn.KVCache;
import org.peft4j.core.tensor.Tensor;

/**
 * An encoder-decoder language model as {@link Generator} sees it (T5): the encoder runs once, the
 * decoder step by step with a self-attention KV cache and cross-attention keys/values computed
 * once from the encoder output.
 */
public interface Seq2SeqLM {

    /**
     * What the decoder needs from one encoder run: the encoder output {@code [B, S, hidden]}, its
     * padding mask {@code [B, S]} (null = none; it covers any virtual tokens a prompt method put in
     * front), and per decoder layer an optional key/value prefix for self-attention and for
     * cross-attention ({@code [B, heads, P, headDim]}, prefix tuning; null arrays = none).
     */
    record Encoded(Tensor hidden, INDArray mask, Tensor[] selfPrefixKeys, Tensor[] selfPrefixValues,
                   Tensor[] crossPrefixKeys, Tensor[] crossPrefixValues) {

        public Encoded(Tensor hidden, INDArray mask) {
            this(hidden, mask, null, null, null, null);
        }

        public long batchSize() {
            return hidden.size(0);
        }

        /** Rows {@code rows} of everything (repeats allowed): beam search expands and reorders with it. */
        public Encoded selectRows(long[] rows) {
            return new Encoded(rowsOf(hidden, rows), mask == null ? null : mask.get(NDArrayIndex.indices(rows), NDArrayIndex.all()).dup('c'),
                    rowsOf(selfPrefixKeys, rows), rowsOf(selfPrefixValues, rows), rowsOf(crossPrefixKeys, rows),
                    rowsOf(crossPrefixValues, rows));
        }

        private static Tensor[] rowsOf(Tensor[] ts, long[] rows) {
            if (ts == null) {
                return null;
            }
            Tensor[] out = new Tensor[ts.length];
            for (int i = 0; i < ts.length; i++) {
                out[i] = ts[i] == null ? null : rowsOf(ts[i], rows);
            }
            return out;
        }

        private static Tensor rowsOf(Tensor t, long[] rows) {
            INDArray v = t.value();
            org.nd4j.linalg.indexing.INDArrayIndex[] ix = new org.nd4j.linalg.indexing.INDArrayIndex[v.rank()];
            ix[0] = NDArrayIndex.indices(rows);
            for (int i = 1; i < ix.length; i++) {
                ix[i] = NDArrayIndex.all();
            }
            return Tensor.constant(v.get(ix).dup('c'));
        }
    }

    int vocabSize();

    /** The longest encoder input and the longest decoder input accepted. */
    int maxPositions();

    /** The token the decoder starts from ({@code decoder_start_token_id}); an error naming the key when the config has none. */
    int decoderStartTokenId();

    /** One encoder run on {@code inputIds [B, S]} (mask null = no padding), with any installed prompt method applied. */
    Encoded encode(INDArray inputIds, INDArray attentionMask);

    /**
     * Decoder logits {@code [B, T, vocab]}; {@code caches} (one per decoder layer) are appended to,
     * {@code crossCache} holds each layer's cross-attention keys/values once computed; both may be null.
     */
    Tensor decode(INDArray decoderInputIds, INDArray decoderMask, Encoded encoded, KVCache[] caches, Tensor[][] crossCache);

    KVCache[] newCaches();

    Tensor[][] newCrossCache();
}
