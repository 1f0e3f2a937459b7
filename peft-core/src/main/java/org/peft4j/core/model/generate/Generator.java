package org.peft4j.core.model.generate;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.model.decoder.CausalLM;
import org.peft4j.core.nn.KVCache;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Autoregressive text generation, batched, for a decoder-only {@link CausalLM} or an
 * encoder-decoder {@link Seq2SeqLM}: greedy, seeded sampling ({@link GenerationConfig}) or beam
 * search ({@code numBeams > 1}, Hugging Face's {@code BeamSearchScorer} rules, see
 * {@link #beamSearch}). Both kinds of model are driven through one per-step session, so every
 * strategy works for both.
 *
 * <p>Decoder-only prompts are left-padded (as Hugging Face does for generation) so every row's
 * next token comes from the last column; positions follow the attention mask. Encoder-decoder
 * inputs may be padded either way (the encoder mask hides the pads): the encoder runs once, the
 * decoder starts from {@code decoder_start_token_id}, and the generated tokens exclude it.
 *
 * <p>With the KV cache (the default) the prompt (or the encoder) runs once and then each step
 * feeds only the new token per row, reusing every layer's cached keys and values (and, for
 * encoder-decoders, the cross-attention keys/values computed once). Without it every step
 * recomputes the whole decoder sequence, which is slower but independent of the cache code;
 * both give the same tokens. Everything runs under {@link NoGrad}.
 */
public final class Generator {
    private static final Logger LOG = LoggerFactory.getLogger(Generator.class);

    private final CausalLM causal;
    private final Seq2SeqLM seq2seq;

    public Generator(CausalLM model) {
        if (model == null) {
            throw new IllegalArgumentException("model must not be null");
        }
        this.causal = model;
        this.seq2seq = null;
    }

    public Generator(Seq2SeqLM model) {
        if (model == null) {
            throw new IllegalArgumentException("model must not be null");
        }
        this.causal = null;
        this.seq2seq = model;
    }

    private int vocabSize() {
        return causal != null ? causal.vocabSize() : seq2seq.vocabSize();
    }

    /** Generates for ragged prompts (each a non-empty array of token ids), with the KV cache. */
    public GenerationResult generate(int[][] prompts, GenerationConfig cfg) {
        return generate(prompts, cfg, true);
    }

    /** Ragged prompts, left-padded for a decoder-only model, right-padded for an encoder-decoder's encoder. */
    public GenerationResult generate(int[][] prompts, GenerationConfig cfg, boolean useCache) {
        if (prompts == null || prompts.length == 0) {
            throw new IllegalArgumentException("no prompts given");
        }
        if (cfg == null) {
            throw new IllegalArgumentException("generation config must not be null");
        }
        int p = 0;
        for (int b = 0; b < prompts.length; b++) {
            if (prompts[b] == null || prompts[b].length == 0) {
                throw new IllegalArgumentException("prompt " + b + " is empty");
            }
            p = Math.max(p, prompts[b].length);
        }
        INDArray ids = Nd4j.valueArrayOf(new long[]{prompts.length, p}, (long) cfg.padTokenId(), DataType.INT64);
        INDArray mask = Nd4j.zeros(DataType.INT64, prompts.length, p);
        for (int b = 0; b < prompts.length; b++) {
            int off = causal != null ? p - prompts[b].length : 0;
            for (int t = 0; t < prompts[b].length; t++) {
                ids.putScalar(b, off + t, prompts[b][t]);
                mask.putScalar(b, off + t, 1);
            }
        }
        return generate(ids, mask, cfg, useCache);
    }

    /**
     * Generates from {@code inputIds [B, P]} with {@code attentionMask [B, P]} (null = no padding).
     * For a decoder-only model the batch must be left-padded (a pad after a real token is
     * rejected, as the next token of such a row would not be in the last column).
     */
    public GenerationResult generate(INDArray inputIds, INDArray attentionMask, GenerationConfig cfg, boolean useCache) {
        if (cfg == null) {
            throw new IllegalArgumentException("generation config must not be null");
        }
        if (inputIds == null || inputIds.rank() != 2 || inputIds.size(1) == 0) {
            throw new IllegalArgumentException("inputIds must be [batch, seq] with seq > 0, found "
                    + (inputIds == null ? "null" : Arrays.toString(inputIds.shape())));
        }
        int batch = (int) inputIds.size(0);
        int p = (int) inputIds.size(1);
        INDArray mask = attentionMask == null ? Nd4j.ones(DataType.INT64, batch, p) : attentionMask.castTo(DataType.INT64);
        if (!Arrays.equals(mask.shape(), inputIds.shape())) {
            throw new IllegalArgumentException("attentionMask " + Arrays.toString(mask.shape()) + " does not match inputIds "
                    + Arrays.toString(inputIds.shape()));
        }
        int vocab = vocabSize();
        int[][] prompts = new int[batch][];
        for (int b = 0; b < batch; b++) {
            boolean seenReal = false;
            List<Integer> real = new ArrayList<>();
            for (int t = 0; t < p; t++) {
                long m = mask.getLong(b, t);
                long id = inputIds.getLong(b, t);
                if (m != 0 && m != 1) {
                    throw new IllegalArgumentException("attentionMask must hold 0/1, found " + m + " at [" + b + ", " + t + "]");
                }
                if (m == 1) {
                    if (id < 0 || id >= vocab) {
                        throw new IllegalArgumentException("token id " + id + " at [" + b + ", " + t
                                + "] outside the vocabulary [0, " + vocab + ")");
                    }
                    real.add((int) id);
                    seenReal = true;
                } else if (seenReal && causal != null) {
                    throw new IllegalArgumentException("prompt row " + b + " is not left-padded (pad at column " + t
                            + " after a real token); generation needs left padding");
                }
            }
            if (!seenReal) {
                throw new IllegalArgumentException("prompt row " + b + " has no real token");
            }
            prompts[b] = real.stream().mapToInt(Integer::intValue).toArray();
        }
        Session s;
        if (causal != null) {
            int fed = p + Math.max(0, cfg.maxNewTokens() - 1);
            if (fed > causal.maxPositions()) {
                throw new IllegalArgumentException("prompt length " + p + " + maxNewTokens " + cfg.maxNewTokens()
                        + " needs " + fed + " positions, more than the model's limit " + causal.maxPositions());
            }
            s = new CausalSession(causal, inputIds.castTo(DataType.INT64), mask, useCache, prompts);
        } else {
            int start = seq2seq.decoderStartTokenId();
            if (p > seq2seq.maxPositions()) {
                throw new IllegalArgumentException("encoder input length " + p + " exceeds the model's limit " + seq2seq.maxPositions());
            }
            if (cfg.maxNewTokens() > seq2seq.maxPositions()) {
                throw new IllegalArgumentException("maxNewTokens " + cfg.maxNewTokens() + " needs " + cfg.maxNewTokens()
                        + " decoder positions, more than the model's limit " + seq2seq.maxPositions());
            }
            s = new Seq2SeqSession(seq2seq, inputIds.castTo(DataType.INT64), mask, useCache, start);
        }
        GenerationResult r;
        try (NoGrad ignored = NoGrad.enter()) {
            r = cfg.numBeams() > 1 ? beamSearch(s, batch, cfg) : sampleOrGreedy(s, batch, cfg);
        }
        LOG.debug("generated {} (cache={})", r, useCache);
        return r;
    }

    /** Greedy or sampling: one token per row per step, a row stops after a stop token (then fed the pad). */
    private GenerationResult sampleOrGreedy(Session s, int batch, GenerationConfig cfg) {
        int[][] out = new int[batch][cfg.maxNewTokens()];
        int[] outLen = new int[batch];
        boolean[] stopped = new boolean[batch];
        Rng rng = new Rng(cfg.seed());
        long[] next = null;
        for (int step = 0; step < cfg.maxNewTokens(); step++) {
            INDArray last = s.next(next);
            next = new long[batch];
            boolean allStopped = true;
            for (int b = 0; b < batch; b++) {
                int tok;
                if (stopped[b]) {
                    tok = cfg.padTokenId();
                } else {
                    float[] row = last.getRow(b).dup().toFloatVector();
                    int[] history = s.history(b);
                    tok = LogitsProcessing.select(row, history, history.length, cfg, rng);
                    out[b][outLen[b]++] = tok;
                    s.record(b, tok);
                    stopped[b] = cfg.stopTokenIds().contains(tok);
                }
                allStopped &= stopped[b];
                next[b] = tok;
            }
            if (allStopped) {
                break;
            }
        }
        int[][] tokens = new int[batch][];
        for (int b = 0; b < batch; b++) {
            tokens[b] = Arrays.copyOf(out[b], outLen[b]);
        }
        return new GenerationResult(tokens, stopped);
    }

    /** A finished beam hypothesis. */
    private record Hypothesis(double score, int[] tokens, boolean stopped) {
    }

    /**
     * Beam search as Hugging Face's {@code BeamSearchScorer} (num_beams = k): every row starts
     * with k beams (all but the first at −1e9 so the first step picks k distinct tokens); each
     * step adds the log-softmax of the next-token logits (after the repetition penalty) to the
     * beam scores and takes the 2k best (beam, token) candidates of the row; a candidate that is
     * a stop token is kept as a finished hypothesis with score
     * {@code sum log p / generated_length^length_penalty} (generated length counting the stop
     * token) only when it ranks among the first k, the first k other candidates become the next
     * beams. A row keeps its k best hypotheses and is done when it has k of them and either
     * {@code earlyStopping} or no live beam could still beat the worst (best live score divided
     * by the current generated length to the penalty). At {@code maxNewTokens} the live beams of
     * unfinished rows become hypotheses too (score divided by their length). The best hypothesis
     * of each row is returned.
     */
    private GenerationResult beamSearch(Session s, int batch, GenerationConfig cfg) {
        int k = cfg.numBeams();
        long[] expand = new long[batch * k];
        for (int i = 0; i < expand.length; i++) {
            expand[i] = i / k;
        }
        s.selectRows(expand);
        double[] beamScores = new double[batch * k];
        for (int i = 0; i < beamScores.length; i++) {
            beamScores[i] = i % k == 0 ? 0 : -1e9;
        }
        List<List<Hypothesis>> hyps = new ArrayList<>();
        for (int b = 0; b < batch; b++) {
            hyps.add(new ArrayList<>());
        }
        boolean[] done = new boolean[batch];
        int[][] seqs = new int[batch * k][0];
        long[] next = null;
        int vocab = vocabSize();
        double lp = cfg.lengthPenalty();
        for (int step = 0; step < cfg.maxNewTokens(); step++) {
            INDArray logits = s.next(next);
            int curLen = step + 1;   // generated length once this step's token is added
            double[][] scores = new double[batch * k][];
            for (int r = 0; r < batch * k; r++) {
                float[] row = logits.getRow(r).dup().toFloatVector();
                int[] history = s.history(r);
                double[] ls = logSoftmax(row);
                if (cfg.repetitionPenalty() != 1.0) {
                    float[] f = new float[ls.length];
                    for (int i = 0; i < f.length; i++) {
                        f[i] = (float) ls[i];
                    }
                    LogitsProcessing.repetitionPenalty(f, history, history.length, cfg.repetitionPenalty());
                    for (int i = 0; i < f.length; i++) {
                        ls[i] = f[i];
                    }
                }
                for (int i = 0; i < ls.length; i++) {
                    ls[i] += beamScores[r];
                }
                scores[r] = ls;
            }
            long[] src = new long[batch * k];
            long[] tok = new long[batch * k];
            double[] newScores = new double[batch * k];
            for (int b = 0; b < batch; b++) {
                if (done[b]) {
                    for (int j = 0; j < k; j++) {
                        src[b * k + j] = b * k;
                        tok[b * k + j] = cfg.padTokenId();
                        newScores[b * k + j] = 0;
                    }
                    continue;
                }
                int[] top = topCandidates(scores, b * k, k, vocab, 2 * k);
                int j = 0;
                for (int rank = 0; rank < top.length && j < k; rank++) {
                    int beam = top[rank] / vocab;
                    int t = top[rank] % vocab;
                    double sc = scores[b * k + beam][t];
                    if (cfg.stopTokenIds().contains(t)) {
                        if (rank >= k) {
                            continue;
                        }
                        int[] seq = Arrays.copyOf(seqs[b * k + beam], curLen);
                        seq[curLen - 1] = t;
                        addHypothesis(hyps.get(b), k, new Hypothesis(sc / Math.pow(curLen, lp), seq, true));
                    } else {
                        src[b * k + j] = b * k + beam;
                        tok[b * k + j] = t;
                        newScores[b * k + j] = sc;
                        j++;
                    }
                }
                double best = scores[b * k + top[0] / vocab][top[0] % vocab];
                if (hyps.get(b).size() >= k) {
                    double worst = hyps.get(b).get(hyps.get(b).size() - 1).score();
                    done[b] = cfg.earlyStopping() || worst >= best / Math.pow(curLen, lp);
                }
            }
            int[][] nextSeqs = new int[batch * k][];
            for (int r = 0; r < batch * k; r++) {
                nextSeqs[r] = Arrays.copyOf(seqs[(int) src[r]], curLen);
                nextSeqs[r][curLen - 1] = (int) tok[r];
            }
            seqs = nextSeqs;
            beamScores = newScores;
            s.selectRows(src);
            for (int r = 0; r < batch * k; r++) {
                s.record(r, (int) tok[r]);
            }
            next = tok;
            boolean all = true;
            for (boolean d : done) {
                all &= d;
            }
            if (all) {
                break;
            }
        }
        int[][] tokens = new int[batch][];
        boolean[] stopped = new boolean[batch];
        for (int b = 0; b < batch; b++) {
            if (!done[b]) {
                for (int j = 0; j < k; j++) {
                    int[] seq = seqs[b * k + j];
                    addHypothesis(hyps.get(b), k, new Hypothesis(beamScores[b * k + j] / Math.pow(seq.length, lp), seq, false));
                }
            }
            Hypothesis best = hyps.get(b).get(0);
            tokens[b] = best.tokens();
            stopped[b] = best.stopped();
        }
        return new GenerationResult(tokens, stopped);
    }

    /** Keeps the k best (sorted best first); a new one equal to the worst of a full list is not added, as HF. */
    private static void addHypothesis(List<Hypothesis> list, int k, Hypothesis h) {
        if (list.size() >= k && h.score() <= list.get(list.size() - 1).score()) {
            return;
        }
        int at = 0;
        while (at < list.size() && list.get(at).score() >= h.score()) {
            at++;
        }
        list.add(at, h);
        while (list.size() > k) {
            list.remove(list.size() - 1);
        }
    }

    /** Flat indices {@code beam·vocab + token} of the n best scores of rows {@code first..first+k−1}, best first. */
    private static int[] topCandidates(double[][] scores, int first, int k, int vocab, int n) {
        int total = k * vocab;
        n = Math.min(n, total);
        int[] best = new int[n];
        double[] bestScore = new double[n];
        Arrays.fill(bestScore, Double.NEGATIVE_INFINITY);
        int filled = 0;
        for (int i = 0; i < total; i++) {
            double v = scores[first + i / vocab][i % vocab];
            if (filled == n && v <= bestScore[n - 1]) {
                continue;
            }
            int pos = Math.min(filled, n - 1);
            while (pos > 0 && bestScore[pos - 1] < v) {
                if (pos < n) {
                    bestScore[pos] = bestScore[pos - 1];
                    best[pos] = best[pos - 1];
                }
                pos--;
            }
            bestScore[pos] = v;
            best[pos] = i;
            filled = Math.min(n, filled + 1);
        }
        return best;
    }

    private static double[] logSoftmax(float[] row) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : row) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : row) {
            sum += Math.exp(v - max);
        }
        double log = max + Math.log(sum);
        double[] out = new double[row.length];
        for (int i = 0; i < row.length; i++) {
            out[i] = row[i] - log;
        }
        return out;
    }

    /** One decoding run of a batch of rows, whatever the model kind. */
    private interface Session {
        /** Next-token logits {@code [rows, vocab]}, after feeding {@code tokens} (one per row; null on the first call). */
        INDArray next(long[] tokens);

        /** Keeps rows {@code rows} (repeats allowed): beam search expands and reorders with it. */
        void selectRows(long[] rows);

        /** The tokens the repetition penalty looks at for row {@code r} (prompt + generated, or start + generated). */
        int[] history(int r);

        /** Row {@code r} produced {@code token}. */
        void record(int r, int token);
    }

    private static INDArray rows(INDArray a, long[] rows) {
        return a.get(NDArrayIndex.indices(rows), NDArrayIndex.all()).dup('c');
    }

    private static INDArray lastColumn(Tensor logits) {
        long t = logits.size(1);
        return logits.value().get(NDArrayIndex.all(), NDArrayIndex.point(t - 1), NDArrayIndex.all());
    }

    private static INDArray column(long[] tokens) {
        return Nd4j.createFromArray(tokens).reshape(tokens.length, 1);
    }

    /** History lists per row, reordered with the rows. */
    private static final class Histories {
        private List<List<Integer>> rows = new ArrayList<>();

        Histories(int[][] initial) {
            for (int[] r : initial) {
                List<Integer> l = new ArrayList<>();
                for (int t : r) {
                    l.add(t);
                }
                rows.add(l);
            }
        }

        int[] get(int r) {
            return rows.get(r).stream().mapToInt(Integer::intValue).toArray();
        }

        void add(int r, int t) {
            rows.get(r).add(t);
        }

        void select(long[] idx) {
            List<List<Integer>> n = new ArrayList<>();
            for (long i : idx) {
                n.add(new ArrayList<>(rows.get((int) i)));
            }
            rows = n;
        }
    }

    private static final class CausalSession implements Session {
        private final CausalLM model;
        private final boolean useCache;
        private INDArray allIds;
        private INDArray allMask;
        private KVCache[] caches;
        private final Histories histories;
        private boolean started;

        CausalSession(CausalLM model, INDArray ids, INDArray mask, boolean useCache, int[][] prompts) {
            this.model = model;
            this.useCache = useCache;
            this.allIds = ids;
            this.allMask = mask;
            this.caches = useCache ? model.newCaches() : null;
            this.histories = new Histories(prompts);
        }

        @Override
        public INDArray next(long[] tokens) {
            INDArray feed = allIds;
            if (started) {
                INDArray col = column(tokens);
                allIds = Nd4j.concat(1, allIds, col);
                allMask = Nd4j.concat(1, allMask, Nd4j.ones(DataType.INT64, tokens.length, 1));
                feed = useCache ? col : allIds;
            }
            started = true;
            return lastColumn(model.forward(feed, allMask, caches));
        }

        @Override
        public void selectRows(long[] rows) {
            allIds = rows(allIds, rows);
            allMask = rows(allMask, rows);
            if (caches != null) {
                for (KVCache c : caches) {
                    c.selectRows(rows);
                }
            }
            histories.select(rows);
        }

        @Override
        public int[] history(int r) {
            return histories.get(r);
        }

        @Override
        public void record(int r, int token) {
            histories.add(r, token);
        }
    }

    private static final class Seq2SeqSession implements Session {
        private final Seq2SeqLM model;
        private final boolean useCache;
        private Seq2SeqLM.Encoded encoded;
        private INDArray decIds;
        private final KVCache[] caches;
        private Tensor[][] cross;
        private Histories histories;

        Seq2SeqSession(Seq2SeqLM model, INDArray ids, INDArray mask, boolean useCache, int start) {
            this.model = model;
            this.useCache = useCache;
            try (NoGrad ignored = NoGrad.enter()) {
                this.encoded = model.encode(ids, mask);
            }
            int b = (int) ids.size(0);
            this.decIds = Nd4j.valueArrayOf(new long[]{b, 1}, (long) start, DataType.INT64);
            this.caches = useCache ? model.newCaches() : null;
            this.cross = useCache ? model.newCrossCache() : null;
            int[][] h = new int[b][];
            for (int i = 0; i < b; i++) {
                h[i] = new int[]{start};
            }
            this.histories = new Histories(h);
        }

        @Override
        public INDArray next(long[] tokens) {
            INDArray feed = decIds;
            if (tokens != null) {
                INDArray col = column(tokens);
                decIds = Nd4j.concat(1, decIds, col);
                feed = useCache ? col : decIds;
            }
            return lastColumn(model.decode(feed, null, encoded, caches, cross));
        }

        @Override
        public void selectRows(long[] rows) {
            encoded = encoded.selectRows(rows);
            decIds = rows(decIds, rows);
            if (caches != null) {
                for (KVCache c : caches) {
                    c.selectRows(rows);
                }
            }
            if (cross != null) {
                for (int l = 0; l < cross.length; l++) {
                    if (cross[l] != null) {
                        Tensor[] kv = cross[l];
                        cross[l] = new Tensor[]{
                                Tensor.constant(kv[0].value().get(NDArrayIndex.indices(rows), NDArrayIndex.all(), NDArrayIndex.all(),
                                        NDArrayIndex.all()).dup('c')),
                                Tensor.constant(kv[1].value().get(NDArrayIndex.indices(rows), NDArrayIndex.all(), NDArrayIndex.all(),
                                        NDArrayIndex.all()).dup('c'))};
                    }
                }
            }
            histories.select(rows);
        }

        @Override
        public int[] history(int r) {
            return histories.get(r);
        }

        @Override
        public void record(int r, int token) {
            histories.add(r, token);
        }
    }
}
