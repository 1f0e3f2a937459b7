package org.peft4j.distill;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;
import org.peft4j.core.model.BackboneOutput;
import org.peft4j.core.model.HeadOutput;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.ModuleList;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.train.Batch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The distillation objective (Hinton et al. 2015; hidden states as TinyBERT; attention as MiniLM):
 * <pre>
 *   logit term  = mean over rows of  alpha·CE(student, gold) + (1 − alpha)·T²·KL(p_t^T ‖ p_s^T)   (labelled rows)
 *                                                          T²·KL(p_t^T ‖ p_s^T)   (rows with label −100)
 *   hidden term = mean over the matched layer pairs of MSE or (1 − cosine) between the student's
 *                 state, projected to the teacher's width when the widths differ, and the teacher's,
 *                 over real tokens only
 *   attention   = KL(A_t ‖ A_s) of the last layers' attention rows, averaged over heads and real query tokens
 *   total       = logit term + hiddenWeight·hidden term + attentionWeight·attention term
 * </pre>
 * It is a {@link Module} because the projections are trained with the student: add
 * {@link #namedTrainableParameters()} to the optimizer's parameters.
 */
public final class DistillationLoss extends Module {
    /** Guards log(0) at padded key columns, where both attention distributions are 0. */
    static final double ATTENTION_EPS = 1e-12;

    private final DistillationConfig config;
    /** One entry per layer pair: a {@code [studentHidden → teacherHidden]} projection, or null when widths agree. */
    private final List<Linear> projections = new ArrayList<>();

    /**
     * @param teacherHidden the teacher's hidden width
     * @param studentHidden the student's hidden width
     * @param rng           initialises the projections
     */
    public DistillationLoss(DistillationConfig config, int teacherHidden, int studentHidden, Rng rng) {
        this.config = config;
        ModuleList list = registerModule("projections", new ModuleList());
        if (config.usesHidden()) {
            for (DistillationConfig.LayerPair p : config.layers()) {
                Linear proj = teacherHidden == studentHidden ? null : new Linear(studentHidden, teacherHidden, true, rng);
                projections.add(proj);
                if (proj != null) {
                    list.add(proj);
                }
            }
        }
    }

    public DistillationConfig config() {
        return config;
    }

    /** The projection of layer pair {@code i}, or null when teacher and student widths agree. */
    public Linear projection(int i) {
        return projections.get(i);
    }

    /** The whole objective for one batch; {@code mask [batch, seq]} (null = no padding). */
    public Tensor loss(HeadOutput student, TeacherTargets teacher, INDArray labels, INDArray mask) {
        Tensor total = logitLoss(student.logits(), teacher.logits(), labels, config.temperature(), config.alpha());
        BackboneOutput so = student.backbone();
        if (config.usesHidden()) {
            total = Ops.add(total, Ops.mul(hiddenLoss(so, teacher, mask), config.hiddenWeight()));
        }
        if (config.usesAttention()) {
            if (so.attentions().isEmpty() || teacher.attention() == null) {
                throw new IllegalArgumentException("attention distillation needs the last layer's attentions of both models"
                        + " (run them with outputAttentions)");
            }
            Tensor att = attentionLoss(so.attentions().get(so.attentions().size() - 1), teacher.attention(), mask);
            total = Ops.add(total, Ops.mul(att, config.attentionWeight()));
        }
        return total;
    }

    /**
     * The logit term. {@code student [batch, labels]}, {@code teacher [batch, labels]} (a constant),
     * {@code labels [batch]} with {@link Batch#IGNORE_INDEX} for examples without a gold label (null = none labelled).
     */
    public static Tensor logitLoss(Tensor student, INDArray teacher, INDArray labels, double temperature, double alpha) {
        long[] ss = student.shape();
        if (ss.length != 2 || !Arrays.equals(ss, teacher.shape())) {
            throw new IllegalArgumentException("student logits " + Arrays.toString(ss) + " and teacher logits "
                    + Arrays.toString(teacher.shape()) + " must both be [batch, labels] of one shape"
                    + (ss.length == 2 && teacher.rank() == 2 && ss[0] == teacher.size(0)
                    ? " (the models have different label counts: student " + ss[1] + ", teacher " + teacher.size(1) + ")" : ""));
        }
        int n = (int) ss[0];
        List<Long> lab = new ArrayList<>();
        List<Long> unl = new ArrayList<>();
        long[] y = labels == null ? null : labels.castTo(DataType.INT64).reshape(labels.length()).toLongVector();
        if (y != null && y.length != n) {
            throw new IllegalArgumentException("labels have " + y.length + " rows, logits " + n);
        }
        for (int i = 0; i < n; i++) {
            (y != null && y[i] != Batch.IGNORE_INDEX ? lab : unl).add((long) i);
        }
        Tensor t = Tensor.constant(teacher.castTo(student.value().dataType()));
        Tensor total = null;
        if (!lab.isEmpty()) {
            INDArray idx = rows(lab);
            Tensor sl = lab.size() == n ? student : Ops.indexSelect(student, 0, idx);
            Tensor tl = lab.size() == n ? t : Ops.indexSelect(t, 0, idx);
            INDArray yl = Nd4j.createFromArray(lab.stream().mapToLong(i -> y[(int) (long) i]).toArray());
            Tensor ce = Ops.crossEntropy(sl, yl, Ops.Reduction.MEAN);
            Tensor kd = Ops.klDivergence(sl, tl, temperature);
            // both are means over the labelled rows; weight by their count to get a mean over the batch
            total = Ops.mul(Ops.add(Ops.mul(ce, alpha), Ops.mul(kd, 1 - alpha)), (double) lab.size() / n);
        }
        if (!unl.isEmpty()) {
            INDArray idx = rows(unl);
            Tensor su = unl.size() == n ? student : Ops.indexSelect(student, 0, idx);
            Tensor tu = unl.size() == n ? t : Ops.indexSelect(t, 0, idx);
            Tensor kd = Ops.mul(Ops.klDivergence(su, tu, temperature), (double) unl.size() / n);
            total = total == null ? kd : Ops.add(total, kd);
        }
        return total;
    }

    private static INDArray rows(List<Long> idx) {
        return Nd4j.createFromArray(idx.stream().mapToLong(Long::longValue).toArray());
    }

    /** The hidden-state term over {@link DistillationConfig#layers()}, averaged over the pairs. */
    public Tensor hiddenLoss(BackboneOutput student, TeacherTargets teacher, INDArray mask) {
        List<Tensor> hs = student.hiddenStates();
        if (hs.isEmpty()) {
            throw new IllegalArgumentException("hidden-state distillation needs the student's hidden states (run it with outputHiddenStates)");
        }
        Tensor sum = null;
        List<DistillationConfig.LayerPair> pairs = config.layers();
        for (int i = 0; i < pairs.size(); i++) {
            DistillationConfig.LayerPair p = pairs.get(i);
            if (p.student() >= hs.size()) {
                throw new IllegalArgumentException("student layer " + p.student() + " does not exist: the student has "
                        + hs.size() + " hidden states (0 = embeddings .. " + (hs.size() - 1) + ")");
            }
            INDArray t = teacher.hidden().get(p.teacher());
            if (t == null) {
                throw new IllegalArgumentException("no teacher hidden state for layer " + p.teacher() + " (have "
                        + teacher.hidden().keySet() + ")");
            }
            Tensor s = hs.get(p.student());
            Linear proj = projections.get(i);
            if (proj != null) {
                s = proj.forward(s);
            }
            Tensor term = hiddenPairLoss(s, t, mask, config.hiddenLoss());
            sum = sum == null ? term : Ops.add(sum, term);
        }
        return Ops.mul(sum, 1.0 / pairs.size());
    }

    /**
     * One pair: {@code student [batch, seq, H]} (already projected), {@code teacher [batch, seq, H]}
     * (a constant); MSE averaged over real tokens and the H features, or the mean of
     * {@code 1 − cos} over real tokens.
     */
    public static Tensor hiddenPairLoss(Tensor student, INDArray teacher, INDArray mask, DistillationConfig.HiddenLoss kind) {
        long[] ss = student.shape();
        if (!Arrays.equals(ss, teacher.shape())) {
            throw new IllegalArgumentException("student hidden state " + Arrays.toString(ss) + " and teacher hidden state "
                    + Arrays.toString(teacher.shape()) + " differ (widths that differ need a projection)");
        }
        DataType dt = student.value().dataType();
        INDArray m = mask == null ? Nd4j.ones(dt, ss[0], ss[1]) : mask.neq(0.0).castTo(dt);     // [B, T]
        double count = Math.max(1, m.sumNumber().doubleValue());
        Tensor t = Tensor.constant(teacher.castTo(dt));
        switch (kind) {
            case MSE: {
                Tensor m3 = Tensor.constant(m.reshape('c', ss[0], ss[1], 1));                    // [B, T, 1]
                Tensor sse = Ops.mse(Ops.mul(student, m3), Ops.mul(t, m3), Ops.Reduction.SUM);
                return Ops.mul(sse, 1.0 / (count * ss[2]));
            }
            case COSINE: {
                Tensor cos = Ops.cosineSimilarity(student, t, 2, 1e-8);                             // [B, T]
                Tensor meanCos = Ops.mul(Ops.sum(Ops.mul(cos, Tensor.constant(m))), 1.0 / count);
                return Ops.add(Ops.neg(meanCos), 1.0);
            }
            default:
                throw new IllegalArgumentException("hidden loss " + kind + " compares nothing");
        }
    }

    /**
     * MiniLM's attention transfer on one layer: {@code KL(A_t ‖ A_s)} of each real query row,
     * averaged over heads and real query tokens. {@code student [batch, heads_s, seq, keys]},
     * {@code teacher [batch, heads_t, seq, keys]} (a constant); when the head counts differ both are
     * first averaged over heads (a mean of distributions is a distribution).
     */
    public static Tensor attentionLoss(Tensor student, INDArray teacher, INDArray mask) {
        long[] ss = student.shape();
        long[] ts = teacher.shape();
        if (ss.length != 4 || ts.length != 4 || ss[0] != ts[0] || ss[2] != ts[2] || ss[3] != ts[3]) {
            throw new IllegalArgumentException("student attentions " + Arrays.toString(ss) + " and teacher attentions "
                    + Arrays.toString(ts) + " must be [batch, heads, seq, keys] with one batch, seq and keys");
        }
        DataType dt = student.value().dataType();
        Tensor s = student;
        INDArray t = teacher.castTo(dt);
        if (ss[1] != ts[1]) {
            s = Ops.mean(s, true, 1);
            t = t.mean(true, 1);
        }
        long heads = s.size(1);
        INDArray q = mask == null ? Nd4j.ones(dt, ss[0], ss[2]) : mask.neq(0.0).castTo(dt);
        double count = Math.max(1, q.sumNumber().doubleValue()) * heads;
        // the teacher rows of real query tokens, as weights [B, h, T, K]
        INDArray w = t.mul(q.reshape('c', ss[0], 1, ss[2], 1).broadcast(t.shape()));
        double teacherPart = w.mul(Transforms.log(t.add(ATTENTION_EPS), false)).sumNumber().doubleValue();   // Σ A_t log A_t
        Tensor cross = Ops.sum(Ops.mul(Tensor.constant(w), Ops.log(Ops.add(s, ATTENTION_EPS))));              // Σ A_t log A_s
        return Ops.mul(Ops.add(Ops.neg(cross), teacherPart), 1.0 / count);
    }
}
