package org.peft4j.distill;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.Backbone;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.model.HeadModel;
import org.peft4j.core.model.HeadOutput;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.train.Batch;
import org.peft4j.core.train.DataLoader;
import org.peft4j.core.train.Dataset;
import org.peft4j.core.train.EvalFunction;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.LossFunction;
import org.peft4j.core.train.Metrics;
import org.peft4j.core.train.PaddingCollator;
import org.peft4j.core.train.TrainResult;
import org.peft4j.core.train.Trainer;
import org.peft4j.core.train.TrainingConfig;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Trains a student from a frozen teacher with the shared {@link Trainer}. The teacher runs once
 * per dataset, in eval mode under {@link NoGrad} ({@link TeacherCache}); the batches carry its
 * cached logits and hidden states ({@link DistillCollator}) and the loss is
 * {@link DistillationLoss}. The student is a task model on its own, or wrapped in a
 * {@link PeftModel} (then only its adapter, plus any projection of the loss, is trained).
 * Attention transfer needs the teacher's attention rows of the very batch, which are
 * {@code [heads, T, T]} per example and too large to cache: with it on, the teacher also runs on
 * each batch, still under {@link NoGrad}.
 */
public final class Distiller {
    private final HeadModel teacher;
    private final Module teacherRoot;
    private final HeadModel student;
    private final Module studentRoot;
    private final DistillationLoss loss;
    private final String teacherKey;

    /**
     * @param teacherRoot the teacher's PeftModel or the teacher itself (frozen here, put in eval mode)
     * @param studentRoot the student's PeftModel or the student itself (what the Trainer trains)
     * @param teacherKey  names the teacher in the cache fingerprint (model and adapter)
     * @param rng         initialises the loss's projections
     * @throws IllegalArgumentException when the vocabularies differ in size
     */
    public Distiller(HeadModel teacher, Module teacherRoot, HeadModel student, Module studentRoot,
                     DistillationConfig config, String teacherKey, Rng rng) {
        Backbone tb = teacher.backbone();
        Backbone sb = student.backbone();
        if (tb.vocabSize() != sb.vocabSize()) {
            throw new IllegalArgumentException("teacher and student vocabularies differ: teacher " + tb.vocabSize()
                    + " tokens, student " + sb.vocabSize() + "; distillation on token ids needs one tokenizer");
        }
        this.teacher = teacher;
        this.teacherRoot = teacherRoot;
        this.student = student;
        this.studentRoot = studentRoot;
        this.teacherKey = teacherKey;
        this.loss = new DistillationLoss(config, tb.hiddenSize(), sb.hiddenSize(), rng);
        teacherRoot.freeze();
        teacherRoot.eval();
    }

    public DistillationLoss loss() {
        return loss;
    }

    /** The teacher {@code hidden_states} indices the loss needs. */
    public Set<Integer> teacherLayers() {
        Set<Integer> s = new TreeSet<>();
        if (loss.config().usesHidden()) {
            loss.config().layers().forEach(p -> s.add(p.teacher()));
        }
        return s;
    }

    /** The teacher's cached outputs on {@code examples} ({@code file} null = in memory only). */
    public TeacherCache teacherPass(List<Example> examples, int padId, int batchSize, Path file, PrintStream progress) {
        TeacherCache c = file == null
                ? TeacherCache.compute(teacher, teacherRoot, examples, padId, batchSize, teacherLayers(), teacherKey, progress)
                : TeacherCache.loadOrCompute(file, teacher, teacherRoot, examples, padId, batchSize, teacherLayers(),
                teacherKey, progress);
        checkLabels(c, examples.get(0));
        return c;
    }

    /** The student's label count must be the teacher's: probed on one example. */
    private void checkLabels(TeacherCache c, Example probe) {
        try (NoGrad ignored = NoGrad.enter()) {
            Batch b = PaddingCollator.<Example>dynamic(0).collate(List.of(probe));
            long studentLabels = studentForward(b, false, false).logits().size(-1);
            if (studentLabels != c.numLabels()) {
                throw new IllegalArgumentException("teacher and student label counts differ: teacher " + c.numLabels()
                        + ", student " + studentLabels);
            }
        }
    }

    /** The student on a batch, through its PeftModel's {@code prepareInputs} when it has one. */
    public HeadOutput studentForward(Batch b, boolean hidden, boolean attentions) {
        BackboneInputs in = inputs(student.backbone(), b, hidden, attentions);
        if (studentRoot instanceof PeftModel pm) {
            in = pm.prepareInputs(student.backbone(), in);
        }
        return student.forward(in);
    }

    /** What the Trainer minimises: the student against the batch's teacher outputs. */
    public LossFunction lossFunction() {
        DistillationConfig cfg = loss.config();
        return (m, b) -> {
            Map<Integer, INDArray> hidden = new LinkedHashMap<>();
            for (int layer : teacherLayers()) {
                hidden.put(layer, b.extra(DistillCollator.TEACHER_HIDDEN + layer));
            }
            INDArray attention = null;
            if (cfg.usesAttention()) {
                try (NoGrad ignored = NoGrad.enter()) {
                    List<Tensor> a = teacher.forward(inputs(teacher.backbone(), b, false, true)).backbone().attentions();
                    attention = a.get(a.size() - 1).value();
                }
            }
            TeacherTargets t = new TeacherTargets(b.extra(DistillCollator.TEACHER_LOGITS), hidden, attention);
            HeadOutput so = studentForward(b, cfg.usesHidden(), cfg.usesAttention());
            return loss.loss(so, t, b.labels(), b.attentionMask());
        };
    }

    /** Accuracy and mean cross-entropy of the student. */
    public EvalFunction evalFunction() {
        return Metrics.classification((m, b) -> studentForward(b, false, false).logits());
    }

    /** The student's trainable parameters and the loss's projections ({@code distill.} prefix). */
    public Map<String, Parameter> trainableParameters() {
        Map<String, Parameter> p = new LinkedHashMap<>(studentRoot instanceof PeftModel pm
                ? pm.trainableParameters() : studentRoot.namedTrainableParameters());
        loss.namedTrainableParameters().forEach((k, v) -> p.put("distill." + k, v));
        return p;
    }

    /**
     * The teacher pass over {@code train} (cached in {@code cacheFile}, may be null), then the
     * student trained on it; {@code eval} (may be null) is scored after every epoch. Leaves the
     * student in eval mode.
     *
     * @param dropout the student's dropout generator (saved with checkpoints), or null
     */
    public TrainResult fit(List<Example> train, List<Example> eval, int padId, int maxLength, TrainingConfig config,
                           Path cacheFile, Rng dropout, PrintStream progress) {
        for (int i = 0; i < train.size(); i++) {
            if (train.get(i).ids().length > maxLength) {
                // the teacher sees whole examples; the student's batches would be cut to maxLength
                throw new IllegalArgumentException("training example " + i + " has " + train.get(i).ids().length
                        + " tokens, more than maxLength " + maxLength + ": truncate when encoding");
            }
        }
        TeacherCache cache = teacherPass(train, padId, Math.max(config.batchSize(), 32), cacheFile, progress);
        DataLoader<DistillCollator.Indexed> loader = DataLoader.forTraining(Dataset.of(DistillCollator.index(train)),
                new DistillCollator(padId, maxLength, cache), config);
        DataLoader<Example> evalLoader = eval == null ? null
                : DataLoader.forEvaluation(Dataset.of(eval), PaddingCollator.dynamic(padId, maxLength, true), 64);
        Trainer.Builder b = Trainer.builder(studentRoot, trainableParameters(), lossFunction(), config)
                .evalFunction(evalFunction());
        if (progress != null) {
            b.progressStream(progress);
        }
        if (dropout != null) {
            b.rng(dropout);
        }
        TrainResult r = b.build().fit(loader, evalLoader);
        studentRoot.eval();
        return r;
    }

    /** Backbone inputs of a collated batch: the word embeddings of its ids, its mask and token types. */
    public static BackboneInputs inputs(Backbone backbone, Batch b, boolean hidden, boolean attentions) {
        return BackboneInputs.of(backbone.embed(b.inputIds()), b.attentionMask()).withTokenTypeIds(b.tokenTypeIds())
                .withHiddenStates(hidden).withAttentions(attentions);
    }
}
