package org.peft4j.core.model.t5;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.KVCache;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.AttentionMask;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.ScaledDotProductAttention;
import org.peft4j.core.tensor.ScaledDotProductAttention.Heads;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;

/**
 * T5's attention (HF {@code T5Attention}): projections {@code q, k, v, o} without bias, inner
 * width {@code num_heads · d_kv}, scores <b>not</b> scaled by 1/√d, and in layer 0 of each stack
 * the {@code relative_attention_bias} table {@code [num_buckets, num_heads]} from which the
 * stack's position bias is computed ({@link #positionBias}). Projections are looked up by name
 * at every forward, so LoRA and IA3 can wrap them.
 */
public final class T5Attention extends Module {
    private final T5Config config;
    private final boolean decoder;
    private final boolean hasRelativeBias;
    private final Rng dropout;

    T5Attention(T5Config c, boolean decoder, boolean hasRelativeBias, Rng init, Rng dropout) {
        this.config = c;
        this.decoder = decoder;
        this.hasRelativeBias = hasRelativeBias;
        this.dropout = dropout;
        int d = c.dModel();
        int inner = c.innerDim();
        registerModule("q", new Linear(d, inner, false, init));
        registerModule("k", new Linear(d, inner, false, init));
        registerModule("v", new Linear(d, inner, false, init));
        registerModule("o", new Linear(inner, d, false, init));
        if (hasRelativeBias) {
            registerModule("relative_attention_bias", new Embedding(c.relativeAttentionNumBuckets(), c.numHeads(), -1, init));
        }
    }

    public boolean hasRelativeAttentionBias() {
        return hasRelativeBias;
    }

    /** {@code [B, L, d_model]} → the {@code k} and {@code v} heads {@code [B, H, L, d_kv]} (cross-attention computes them once). */
    Tensor[] keysValues(Tensor x) {
        return new Tensor[]{split(project("k", x)), split(project("v", x))};
    }

    private Tensor split(Tensor y) {
        return Heads.merged(y, 0, config.numHeads(), config.dKv()).asSplit();
    }

    private Tensor project(String name, Tensor x) {
        Tensor y = child(name, UnaryModule.class).forward(x);
        if (y.rank() != 3) {
            throw new IllegalStateException("T5 projection '" + name + "' returned " + Arrays.toString(y.shape()));
        }
        return y;
    }

    /**
     * Attention of {@code x [B, T, d_model]} over keys/values {@code [B, H, S, d_kv]}.
     *
     * @param keys, values  all keys/values (prefix, cached and new), already in head layout
     * @param bias          additive score bias broadcasting to {@code [B, H, T, S]}, or null
     * @param mask          which keys each query sees
     * @return {@code [B, T, d_model]} after {@code o}
     */
    Tensor attend(Tensor x, Tensor keys, Tensor values, Tensor bias, AttentionMask mask) {
        Tensor q = project("q", x);
        Heads qh = Heads.merged(q, 0, config.numHeads(), config.dKv());
        double p = config.dropoutRate();
        Tensor ctx;
        if (bias == null) {
            ctx = ScaledDotProductAttention.attend(qh, Heads.split(keys), Heads.split(values), mask, 1.0, p, dropout,
                    isTraining(), true);
        } else {
            ctx = ScaledDotProductAttention.attendWithProbabilities(qh, Heads.split(keys), Heads.split(values), bias, mask,
                    1.0, p, dropout, isTraining(), true).context();
        }
        return child("o", UnaryModule.class).forward(ctx);
    }

    /** Self-attention: k/v of {@code x}, appended to {@code cache} when given, the prefix in front. */
    Tensor selfAttention(Tensor x, Tensor bias, AttentionMask mask, KVCache cache, Tensor prefixK, Tensor prefixV) {
        Tensor[] kv = keysValues(x);
        Tensor k = kv[0];
        Tensor v = kv[1];
        if (cache != null) {
            Tensor[] all = cache.append(k, v);
            k = all[0];
            v = all[1];
        }
        if (prefixK != null) {
            k = Ops.concat(2, prefixK, k);
            v = Ops.concat(2, prefixV, v);
        }
        return attend(x, k, v, bias, mask);
    }

    /**
     * The position bias {@code [1, H, Q, K]} for queries at absolute positions
     * {@code qOffset..qOffset+Q−1} and keys at {@code 0..K−1} (HF {@code compute_bias}); only on
     * the layer that has the table. Differentiable in the table.
     */
    Tensor positionBias(int qLen, int kLen, int qOffset) {
        if (!hasRelativeBias) {
            throw new IllegalStateException("this T5 attention layer has no relative_attention_bias");
        }
        INDArray buckets = bucketIds(qLen, kLen, qOffset, !decoder, config.relativeAttentionNumBuckets(),
                config.relativeAttentionMaxDistance());
        Tensor values = child("relative_attention_bias", Embedding.class).forward(buckets);   // [Q, K, H]
        return Ops.reshape(Ops.permute(values, 2, 0, 1), 1, config.numHeads(), qLen, kLen);
    }

    /** Bucket ids {@code [Q, K]} (INT64) of relative positions {@code key − query}. */
    static INDArray bucketIds(int qLen, int kLen, int qOffset, boolean bidirectional, int numBuckets, int maxDistance) {
        long[] ids = new long[qLen * kLen];
        for (int i = 0; i < qLen; i++) {
            for (int j = 0; j < kLen; j++) {
                ids[i * kLen + j] = bucket(j - (qOffset + i), bidirectional, numBuckets, maxDistance);
            }
        }
        return Nd4j.createFromArray(ids).reshape(qLen, kLen).castTo(DataType.INT64);
    }

    /**
     * HF {@code _relative_position_bucket}: bidirectional halves the buckets and gives keys after
     * the query the upper half; unidirectional maps keys after the query to 0. Distances below
     * half the buckets are exact; larger ones are log-spaced up to {@code maxDistance} and
     * clamped to the last bucket. The log step is computed in float32, as torch does.
     */
    public static int bucket(int relativePosition, boolean bidirectional, int numBuckets, int maxDistance) {
        int buckets = 0;
        int n = numBuckets;
        int rp;
        if (bidirectional) {
            n /= 2;
            buckets += relativePosition > 0 ? n : 0;
            rp = Math.abs(relativePosition);
        } else {
            rp = -Math.min(relativePosition, 0);
        }
        int maxExact = n / 2;
        if (rp < maxExact) {
            return buckets + rp;
        }
        float ratio = (float) rp / (float) maxExact;
        float log = (float) Math.log(ratio);
        float scaled = log / (float) Math.log((double) maxDistance / maxExact) * (float) (n - maxExact);
        int large = maxExact + (int) scaled;
        return buckets + Math.min(large, n - 1);
    }

    @Override
    protected String describe() {
        return "T5Attention(heads=" + config.numHeads() + ", d_kv=" + config.dKv() + (hasRelativeBias ? ", relative bias" : "")
                + (decoder ? ", decoder" : "") + ")";
    }
}
