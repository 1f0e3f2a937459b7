package org.peft4j.distill;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.model.Backbone;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.model.HeadModel;
import org.peft4j.core.model.HeadOutput;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.peft.TaskType;
import org.peft4j.core.tensor.GradMode;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.train.Batch;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.PaddingCollator;
import org.peft4j.core.train.TrainingConfig;
import org.peft4j.distill.DistillationConfig.HiddenLoss;
import org.peft4j.distill.DistillationConfig.LayerPair;
import org.peft4j.lora.LoraConfig;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Distiller on tiny random BERTs: teacher pass, cache, few-shot, and training the student. */
class DistillerTest {

    static BertForSequenceClassification bert(int vocab, int hidden, int layers, int labels, long seed) {
        BertConfig c = BertConfig.builder().vocabSize(vocab).hiddenSize(hidden).numHiddenLayers(layers).numAttentionHeads(2)
                .intermediateSize(2 * hidden).maxPositionEmbeddings(16).typeVocabSize(2).numLabels(labels)
                .hiddenDropoutProb(0).attentionProbsDropoutProb(0).build();
        return new BertForSequenceClassification(c, new Rng(seed));
    }

    /** Lengths 3..8; label 1 when token 7 occurs (a rule the teacher need not know). */
    static List<Example> examples(int n, long seed) {
        Rng r = new Rng(seed);
        List<Example> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int[] ids = new int[3 + r.nextInt(6)];
            ids[0] = 1;
            boolean seven = false;
            for (int j = 1; j < ids.length; j++) {
                ids[j] = 2 + r.nextInt(28);
                seven |= ids[j] == 7;
            }
            out.add(new Example(ids, seven ? 1 : 0));
        }
        return out;
    }

    /** A teacher that records, for every forward, whether grad mode was on and whether its logits are on a tape. */
    static final class Spy implements HeadModel {
        final BertForSequenceClassification inner;
        final List<Boolean> recorded = new ArrayList<>();

        Spy(BertForSequenceClassification inner) {
            this.inner = inner;
        }

        @Override
        public Backbone backbone() {
            return inner.backbone();
        }

        @Override
        public HeadOutput forward(BackboneInputs inputs) {
            HeadOutput o = inner.forward(inputs);
            recorded.add(GradMode.isEnabled() || o.logits().requiresGrad() || !o.logits().isLeaf());
            return o;
        }
    }

    static Map<String, INDArray> snapshot(Map<String, Parameter> params) {
        Map<String, INDArray> m = new LinkedHashMap<>();
        params.forEach((k, p) -> m.put(k, p.value().dup()));
        return m;
    }

    static TrainingConfig training(Path dir, int steps) {
        return TrainingConfig.builder().maxSteps(steps).batchSize(4).learningRate(5e-3).seed(3).logInterval(1000)
                .outputDir(dir).build();
    }

    @Test
    void teacherPassRecordsNoTapeAndTeacherNeverGetsGradients(@TempDir Path dir) {
        BertForSequenceClassification teacher = bert(30, 8, 2, 2, 1);
        Spy spy = new Spy(teacher);
        List<Example> data = examples(12, 5);
        // the teacher's parameters still require gradients here: only NoGrad keeps the pass off the tape
        assertTrue(teacher.parameters().stream().allMatch(Parameter::requiresGrad));
        TeacherCache.compute(spy, teacher, data, 0, 4, Set.of(1), "t", null);
        assertEquals(3, spy.recorded.size());
        assertFalse(spy.recorded.contains(true), "teacher pass ran with grad mode on or made a tape: " + spy.recorded);

        Map<String, INDArray> before = snapshot(teacher.namedParameters());
        BertForSequenceClassification student = bert(30, 6, 1, 2, 2);
        // attention transfer runs the teacher on every batch as well: that pass must be untaped too
        DistillationConfig cfg = DistillationConfig.logits(2, 0.5).withHidden(HiddenLoss.MSE, 1, List.of(new LayerPair(2, 1)))
                .withAttention(1.0);
        Distiller d = new Distiller(spy, teacher, student, student, cfg, "t", new Rng(4));
        Map<String, INDArray> studentBefore = snapshot(student.namedParameters());
        d.fit(data, null, 0, 16, training(dir, 3), null, null, null);
        assertTrue(spy.recorded.size() > 3 + 3, "teacher ran per batch for the attention term");
        assertFalse(spy.recorded.contains(true), "a teacher pass was taped: " + spy.recorded);
        teacher.namedParameters().forEach((k, p) -> {
            assertNull(p.grad(), "teacher " + k + " got a gradient");
            assertEquals(before.get(k), p.value(), "teacher " + k + " changed");
        });
        assertNotEquals(studentBefore.get("classifier.weight"), student.namedParameters().get("classifier.weight").value());
        assertTrue(d.trainableParameters().containsKey("distill.projections.0.weight"), "6 -> 8 projection is trained");
    }

    @Test
    void cachedTeacherOutputsEqualFreshOnes(@TempDir Path dir) {
        BertForSequenceClassification teacher = bert(30, 8, 2, 2, 1);
        teacher.eval();
        List<Example> data = examples(10, 6);
        Path file = dir.resolve("teacher.safetensors");
        TeacherCache c = TeacherCache.loadOrCompute(file, teacher, teacher, data, 0, 4, Set.of(0, 2), "t", null);
        TeacherCache loaded = TeacherCache.load(file);
        assertEquals(c.fingerprint(), loaded.fingerprint());
        assertEquals(c.logits(), loaded.logits());

        int[] idx = {7, 2, 9};
        List<Example> picked = List.of(data.get(7), data.get(2), data.get(9));
        Batch b = new DistillCollator(0, 16, loaded).collate(List.of(
                new DistillCollator.Indexed(7, data.get(7)), new DistillCollator.Indexed(2, data.get(2)),
                new DistillCollator.Indexed(9, data.get(9))));
        try (NoGrad ignored = NoGrad.enter()) {
            for (int r = 0; r < idx.length; r++) {
                // fresh: the example alone, no padding
                Batch one = PaddingCollator.<Example>dynamic(0).collate(List.of(picked.get(r)));
                HeadOutput o = teacher.forward(Distiller.inputs(teacher.backbone(), one, true, false));
                float[] fresh = o.logits().value().castTo(DataType.FLOAT).toFloatVector();
                assertArrayEquals(fresh, b.extra(DistillCollator.TEACHER_LOGITS).getRow(r).toFloatVector(), 1e-5f);
                int len = picked.get(r).ids().length;
                for (int layer : new int[]{0, 2}) {
                    INDArray want = o.backbone().hiddenStates().get(layer).value().get(NDArrayIndex.point(0),
                            NDArrayIndex.all(), NDArrayIndex.all()).castTo(DataType.FLOAT);
                    INDArray got = b.extra(DistillCollator.TEACHER_HIDDEN + layer).get(NDArrayIndex.point(r),
                            NDArrayIndex.interval(0, len), NDArrayIndex.all());
                    assertTrue(want.equalsWithEps(got, 1e-5), "layer " + layer + " row " + r);
                    if (len < b.seqLength()) {
                        assertEquals(0.0, b.extra(DistillCollator.TEACHER_HIDDEN + layer).get(NDArrayIndex.point(r),
                                NDArrayIndex.interval(len, b.seqLength()), NDArrayIndex.all()).amaxNumber().doubleValue());
                    }
                }
            }
        }
        // a second run reuses the file; other examples or another teacher recompute it
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(log, true, StandardCharsets.UTF_8);
        TeacherCache.loadOrCompute(file, teacher, teacher, data, 0, 4, Set.of(0, 2), "t", ps);
        assertTrue(log.toString(StandardCharsets.UTF_8).contains("reusing"), log.toString(StandardCharsets.UTF_8));
        log.reset();
        TeacherCache other = TeacherCache.loadOrCompute(file, teacher, teacher, data.subList(0, 5), 0, 4, Set.of(0, 2), "t", ps);
        assertTrue(log.toString(StandardCharsets.UTF_8).contains("recomputing"), log.toString(StandardCharsets.UTF_8));
        assertEquals(5, other.size());
        assertNotEquals(TeacherCache.fingerprint("t", data, Set.of()), TeacherCache.fingerprint("u", data, Set.of()));
    }

    @Test
    void mismatchedVocabularyOrLabelCountIsAClearError() {
        BertForSequenceClassification teacher = bert(30, 8, 2, 2, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Distiller(teacher, teacher,
                bert(40, 6, 1, 2, 2), bert(40, 6, 1, 2, 2), DistillationConfig.logits(2, 0.5), "t", new Rng(1)));
        assertTrue(e.getMessage().contains("vocabularies differ: teacher 30 tokens, student 40"), e.getMessage());
        BertForSequenceClassification three = bert(30, 6, 1, 3, 2);
        Distiller d = new Distiller(teacher, teacher, three, three, DistillationConfig.logits(2, 0.5), "t", new Rng(1));
        e = assertThrows(IllegalArgumentException.class, () -> d.teacherPass(examples(4, 1), 0, 4, null, null));
        assertTrue(e.getMessage().contains("label counts differ: teacher 2, student 3"), e.getMessage());
        // examples longer than the student's maxLength would give the teacher more text than the student sees
        BertForSequenceClassification two = bert(30, 6, 1, 2, 2);
        Distiller ok = new Distiller(teacher, teacher, two, two, DistillationConfig.logits(2, 0.5), "t", new Rng(1));
        List<Example> longOnes = List.of(new Example(new int[]{1, 2, 3, 4, 5, 6}, 0));
        e = assertThrows(IllegalArgumentException.class, () -> ok.fit(longOnes, null, 0, 4,
                TrainingConfig.builder().maxSteps(1).batchSize(1).build(), null, null, null));
        assertTrue(e.getMessage().contains("6 tokens, more than maxLength 4"), e.getMessage());
    }

    @Test
    void loraStudentMovesTowardTheTeacherAndTrainsOnlyItsAdapter(@TempDir Path dir) {
        BertForSequenceClassification teacher = bert(30, 8, 2, 2, 1);
        BertForSequenceClassification student = bert(30, 8, 1, 2, 7);
        PeftModel pm = Peft.apply(student, LoraConfig.builder().r(4).loraAlpha(8).targetModules("query", "value")
                .modulesToSave("classifier").taskType(TaskType.SEQ_CLS).seed(1).build());
        Map<String, INDArray> base = snapshot(student.namedParameters());
        List<Example> data = FewShot.withSoftPool(examples(24, 9), 4, 3);
        Distiller d = new Distiller(teacher, teacher, student, pm, DistillationConfig.logits(2.0, 0.0), "t", new Rng(2));
        TeacherCache cache = d.teacherPass(data, 0, 8, null, null);
        double before = kdOnData(d, student, cache, data);
        d.fit(data, null, 0, 16, training(dir, 40), null, null, null);
        double after = kdOnData(d, student, cache, data);
        assertTrue(after < 0.5 * before, "KD to the teacher " + before + " -> " + after);
        Set<String> trained = pm.trainableParameters().keySet();
        student.namedParameters().forEach((k, p) -> {
            boolean adapter = k.contains("lora_") || k.contains("modules_to_save");
            if (!adapter) {
                assertEquals(base.get(k), p.value(), k + " is not part of the adapter but changed");
            }
        });
        assertTrue(trained.stream().allMatch(k -> k.contains("lora_") || k.contains("modules_to_save")), trained.toString());
    }

    /** T²·KL of the student to the cached teacher over the whole data, in eval mode. */
    static double kdOnData(Distiller d, BertForSequenceClassification student, TeacherCache cache, List<Example> data) {
        try (NoGrad ignored = NoGrad.enter()) {
            Batch b = new DistillCollator(0, 16, cache).collate(DistillCollator.index(data));
            student.eval();
            return DistillationLoss.logitLoss(d.studentForward(b, false, false).logits(), b.extra(DistillCollator.TEACHER_LOGITS),
                    null, 2.0, 0).item();
        }
    }

    @Test
    void fewShotKeepsKBalancedLabelsAndSoftLabelsTheRest() {
        List<Example> data = examples(40, 3);
        long positives = data.stream().filter(e -> e.label() == 1).count();
        assertTrue(positives >= 4 && positives <= 36, "both classes present: " + positives);
        List<Example> soft = FewShot.withSoftPool(data, 8, 11);
        assertEquals(40, soft.size());
        assertEquals(8, soft.stream().filter(e -> e.label() != Batch.IGNORE_INDEX).count());
        assertEquals(4, soft.stream().filter(e -> e.label() == 1).count());
        assertEquals(4, soft.stream().filter(e -> e.label() == 0).count());
        for (int i = 0; i < 40; i++) {
            assertArrayEquals(data.get(i).ids(), soft.get(i).ids());
        }
        assertEquals(FewShot.chooseLabelled(data, 8, 11), FewShot.chooseLabelled(data, 8, 11));
        assertEquals(8, FewShot.labelledOnly(data, 8, 11).size());
        assertThrows(IllegalArgumentException.class, () -> FewShot.chooseLabelled(data, 41, 1));
    }
}
