package org.peft4j.core.nn;

import org.peft4j.core.tensor.AttentionMask;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.ScaledDotProductAttention;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;

/**
 * Multi-head (optionally grouped-query) self-attention with Hugging Face child names:
 * <ul>
 *   <li>BERT {@code attention.self}: {@code query}, {@code key}, {@code value}, no output projection
 *       (returns the context {@code [B, T, hidden]}), bidirectional;</li>
 *   <li>LLaMA / Mistral / Qwen2 {@code self_attn}: {@code q_proj}, {@code k_proj}, {@code v_proj},
 *       {@code o_proj}, causal, rotary, {@code numKvHeads < numHeads} for GQA;</li>
 *   <li>GPT-2 {@code attn}: one fused {@code c_attn} producing q|k|v column blocks, {@code c_proj},
 *       both {@code fanInFanOut} (Conv1D), causal.</li>
 * </ul>
 * Projections are looked up by name at every forward ({@link #child(String, Class)}), so LoRA
 * can replace them. The attention itself is the fused {@link ScaledDotProductAttention} core, reading the
 * projection outputs in place.
 */
public class MultiHeadAttention extends Module {
    private final int hiddenSize;
    private final int numHeads;
    private final int numKvHeads;
    private final int headDim;
    private final String qName;
    private final String kName;
    private final String vName;
    private final String fusedName;
    private final String outName;
    private final boolean causal;
    private final RotaryEmbedding rotary;
    private final double attnDropout;
    private final double outDropout;
    private final Rng dropoutRng;
    private final double scale;
    private final int layerIndex;

    private MultiHeadAttention(Builder b) {
        this.hiddenSize = b.hiddenSize;
        this.numHeads = b.numHeads;
        this.numKvHeads = b.numKvHeads;
        this.headDim = b.headDim;
        this.qName = b.qName;
        this.kName = b.kName;
        this.vName = b.vName;
        this.fusedName = b.fusedName;
        this.outName = b.outName;
        this.causal = b.causal;
        this.rotary = b.rotary;
        this.attnDropout = b.attnDropout;
        this.outDropout = b.outDropout;
        this.dropoutRng = b.dropoutRng;
        this.scale = b.scale != null ? b.scale : 1.0 / Math.sqrt(b.headDim);
        this.layerIndex = b.layerIndex;
        int qOut = numHeads * headDim;
        int kvOut = numKvHeads * headDim;
        if (fusedName != null) {
            registerModule(fusedName, new Linear(hiddenSize, qOut + 2 * kvOut, b.qBias, b.fanInFanOut, b.initRng));
        } else {
            registerModule(qName, new Linear(hiddenSize, qOut, b.qBias, b.fanInFanOut, b.initRng));
            registerModule(kName, new Linear(hiddenSize, kvOut, b.kBias, b.fanInFanOut, b.initRng));
            registerModule(vName, new Linear(hiddenSize, kvOut, b.vBias, b.fanInFanOut, b.initRng));
        }
        if (outName != null) {
            registerModule(outName, new Linear(qOut, hiddenSize, b.oBias, b.fanInFanOut, b.initRng));
        }
    }

    /** A builder for {@code hiddenSize} split into {@code numHeads} heads (defaults: LLaMA names, biases on, bidirectional). */
    public static Builder builder(int hiddenSize, int numHeads) {
        return new Builder(hiddenSize, numHeads);
    }

    /**
     * Self-attention over {@code x [B, T, hidden]}.
     *
     * @param ctx padding mask, position offset, this layer's prefix and cache (null = none)
     * @return {@code [B, T, hidden]} after the output projection, or the context
     *         {@code [B, T, numHeads·headDim]} when there is none
     */
    public Tensor forward(Tensor x, AttentionContext ctx) {
        if (ctx == null) {
            ctx = AttentionContext.empty();
        }
        if (x.rank() != 3 || x.size(2) != hiddenSize) {
            throw new IllegalArgumentException("attention layer " + layerIndex + " expects [batch, seq, " + hiddenSize
                    + "], got " + Arrays.toString(x.shape()));
        }
        final long b = x.size(0);
        final long qCols = (long) numHeads * headDim;
        final long kvCols = (long) numKvHeads * headDim;

        ScaledDotProductAttention.Heads qh;
        ScaledDotProductAttention.Heads kh;
        ScaledDotProductAttention.Heads vh;
        if (fusedName != null) {
            Tensor qkv = project(fusedName, x, qCols + 2 * kvCols);
            qh = ScaledDotProductAttention.Heads.merged(qkv, 0, numHeads, headDim);
            kh = ScaledDotProductAttention.Heads.merged(qkv, qCols, numKvHeads, headDim);
            vh = ScaledDotProductAttention.Heads.merged(qkv, qCols + kvCols, numKvHeads, headDim);
        } else {
            qh = ScaledDotProductAttention.Heads.merged(project(qName, x, qCols), 0, numHeads, headDim);
            kh = ScaledDotProductAttention.Heads.merged(project(kName, x, kvCols), 0, numKvHeads, headDim);
            vh = ScaledDotProductAttention.Heads.merged(project(vName, x, kvCols), 0, numKvHeads, headDim);
        }

        KVCache cache = ctx.cache(layerIndex);
        Tensor prefixK = ctx.prefixKeys(layerIndex);
        Tensor prefixV = ctx.prefixValues(layerIndex);
        long past = 0;
        long prefixLen = 0;
        if (rotary != null) {
            qh = ScaledDotProductAttention.Heads.split(rotary.apply(qh.asSplit(), ctx.positionOffset()));
        }
        if (rotary != null || cache != null || prefixK != null) {
            // keys/values as [B, Hkv, len, D] tensors: rotated, cached, prefixed
            Tensor k4 = kh.asSplit();
            Tensor v4 = vh.asSplit();
            if (rotary != null) {
                k4 = rotary.apply(k4, ctx.positionOffset());
            }
            if (cache != null) {
                past = cache.length();
                Tensor[] all = cache.append(k4, v4);
                k4 = all[0];
                v4 = all[1];
            }
            if (prefixK != null) {
                checkPrefix(prefixK, b, "keys");
                checkPrefix(prefixV, b, "values");
                prefixLen = prefixK.size(2);
                k4 = Ops.concat(2, prefixK, k4);
                v4 = Ops.concat(2, prefixV, v4);
            }
            kh = ScaledDotProductAttention.Heads.split(k4);
            vh = ScaledDotProductAttention.Heads.split(v4);
        }

        AttentionMask mask = ctx.mask(causal, past, prefixLen);
        Tensor out;
        if (ctx.recordsAttentions()) {
            // the slower composed path that also yields the probabilities [B, H, T, P + past + T]
            ScaledDotProductAttention.WithProbabilities r = ScaledDotProductAttention.attendWithProbabilities(
                    qh, kh, vh, mask, scale, attnDropout, dropoutRng, isTraining(), true);
            ctx.recordAttention(layerIndex, r.probabilities());
            out = r.context();
        } else {
            out = ScaledDotProductAttention.attend(qh, kh, vh, mask, scale, attnDropout, dropoutRng, isTraining(), true);
        }
        if (outName != null) {
            out = child(outName, UnaryModule.class).forward(out);
        }
        if (outDropout > 0 && isTraining()) {
            out = Ops.dropout(out, outDropout, true, dropoutRng);
        }
        return out;
    }

    private Tensor project(String name, Tensor x, long expectedCols) {
        Tensor y = child(name, UnaryModule.class).forward(x);
        if (y.rank() != 3 || y.size(2) != expectedCols) {
            throw new IllegalStateException("projection '" + name + "' of attention layer " + layerIndex + " returned "
                    + Arrays.toString(y.shape()) + ", expected [batch, seq, " + expectedCols + "]");
        }
        return y;
    }

    private void checkPrefix(Tensor p, long b, String what) {
        if (p.rank() != 4 || p.size(0) != b || p.size(1) != numKvHeads || p.size(3) != headDim) {
            throw new IllegalArgumentException("attention layer " + layerIndex + ": prefix " + what + " must be [" + b + ", "
                    + numKvHeads + ", P, " + headDim + "], got " + Arrays.toString(p.shape()));
        }
    }

    public int hiddenSize() {
        return hiddenSize;
    }

    public int numHeads() {
        return numHeads;
    }

    public int numKvHeads() {
        return numKvHeads;
    }

    public int headDim() {
        return headDim;
    }

    public int layerIndex() {
        return layerIndex;
    }

    public boolean isCausal() {
        return causal;
    }

    /** Null when positions are not rotary. */
    public RotaryEmbedding rotary() {
        return rotary;
    }

    public double scale() {
        return scale;
    }

    /** Child names: {q, k, v} (null entries when fused), fused (or null), output (or null). */
    public String[] projectionNames() {
        return new String[]{qName, kName, vName, fusedName, outName};
    }

    @Override
    protected String describe() {
        return "MultiHeadAttention(heads=" + numHeads + (numKvHeads != numHeads ? ", kv_heads=" + numKvHeads : "")
                + ", head_dim=" + headDim + (causal ? ", causal" : "") + (rotary != null ? ", " + rotary : "") + ")";
    }

    /** Configuration of a {@link MultiHeadAttention}. */
    public static final class Builder {
        private final int hiddenSize;
        private final int numHeads;
        private int numKvHeads;
        private int headDim;
        private String qName = "q_proj";
        private String kName = "k_proj";
        private String vName = "v_proj";
        private String fusedName;
        private String outName = "o_proj";
        private boolean qBias = true;
        private boolean kBias = true;
        private boolean vBias = true;
        private boolean oBias = true;
        private boolean fanInFanOut;
        private boolean causal;
        private RotaryEmbedding rotary;
        private double attnDropout;
        private double outDropout;
        private Rng dropoutRng;
        private Double scale;
        private int layerIndex;
        private Rng initRng;

        private Builder(int hiddenSize, int numHeads) {
            if (hiddenSize <= 0 || numHeads <= 0) {
                throw new IllegalArgumentException("attention needs hiddenSize > 0 and numHeads > 0, got "
                        + hiddenSize + ", " + numHeads);
            }
            this.hiddenSize = hiddenSize;
            this.numHeads = numHeads;
            this.numKvHeads = numHeads;
            this.headDim = hiddenSize / numHeads;
        }

        /** Key/value heads for grouped-query attention ({@code num_key_value_heads}); must divide numHeads. */
        public Builder numKvHeads(int n) {
            this.numKvHeads = n;
            return this;
        }

        /** Per-head size (default hiddenSize / numHeads). */
        public Builder headDim(int d) {
            this.headDim = d;
            return this;
        }

        /** Separate q/k/v projections under these child names. */
        public Builder projections(String q, String k, String v) {
            this.qName = q;
            this.kName = k;
            this.vName = v;
            this.fusedName = null;
            return this;
        }

        /** One fused projection producing q|k|v column blocks (GPT-2 {@code c_attn}); its bias flag is {@link #biases}' q flag. */
        public Builder fusedQkv(String name) {
            this.fusedName = name;
            this.qName = null;
            this.kName = null;
            this.vName = null;
            return this;
        }

        /** The output projection's child name, or null for none (BERT's {@code attention.self}). */
        public Builder output(String name) {
            this.outName = name;
            return this;
        }

        /** Bias on each projection (Qwen2: true, true, true, false; LLaMA: all false). */
        public Builder biases(boolean q, boolean k, boolean v, boolean o) {
            this.qBias = q;
            this.kBias = k;
            this.vBias = v;
            this.oBias = o;
            return this;
        }

        /** The same bias setting for every projection. */
        public Builder bias(boolean all) {
            return biases(all, all, all, all);
        }

        /** Projection weights stored {@code [in, out]} (GPT-2 Conv1D). */
        public Builder fanInFanOut(boolean f) {
            this.fanInFanOut = f;
            return this;
        }

        public Builder causal(boolean c) {
            this.causal = c;
            return this;
        }

        /** Rotary positions on queries and keys (null = none). */
        public Builder rotary(RotaryEmbedding r) {
            this.rotary = r;
            return this;
        }

        /** Dropout on the attention weights (training only). */
        public Builder attentionDropout(double p, Rng rng) {
            this.attnDropout = p;
            this.dropoutRng = rng;
            return this;
        }

        /** Dropout on the layer output after the output projection (GPT-2's {@code resid_dropout}); shares the dropout Rng. */
        public Builder outputDropout(double p, Rng rng) {
            this.outDropout = p;
            if (rng != null) {
                this.dropoutRng = rng;
            }
            return this;
        }

        /** Score scale (default {@code 1/√headDim}). */
        public Builder scale(double s) {
            this.scale = s;
            return this;
        }

        /** This layer's index into the context's per-layer prefixes and caches. */
        public Builder layerIndex(int i) {
            this.layerIndex = i;
            return this;
        }

        /** Source of the projections' initial weights (PyTorch's default init); without one they start at zero, to be loaded. */
        public Builder initRng(Rng rng) {
            this.initRng = rng;
            return this;
        }

        public MultiHeadAttention build() {
            if (headDim <= 0) {
                throw new IllegalArgumentException("head dimension must be positive, got " + headDim);
            }
            if (numKvHeads <= 0 || numHeads % numKvHeads != 0) {
                throw new IllegalArgumentException("numHeads " + numHeads + " must be a multiple of numKvHeads " + numKvHeads);
            }
            if (fusedName == null && (qName == null || kName == null || vName == null)) {
                throw new IllegalArgumentException("attention needs q/k/v projection names or a fused projection");
            }
            if (rotary != null && rotary.headDim() != headDim) {
                throw new IllegalArgumentException("rotary head dim " + rotary.headDim() + " != attention head dim " + headDim);
            }
            if (!(attnDropout >= 0 && attnDropout < 1) || !(outDropout >= 0 && outDropout < 1)) {
                throw new IllegalArgumentException("dropout must be in [0, 1), got attention " + attnDropout + ", output " + outDropout);
            }
            if ((attnDropout > 0 || outDropout > 0) && dropoutRng == null) {
                throw new IllegalArgumentException("attention dropout needs an Rng");
            }
            if (layerIndex < 0) {
                throw new IllegalArgumentException("layer index must be >= 0, got " + layerIndex);
            }
            return new MultiHeadAttention(this);
        }
    }
}
