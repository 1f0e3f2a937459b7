package org.peft4j.distill;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.train.Batch;
import org.peft4j.core.train.Collator;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.PaddingCollator;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Pads examples with the shared {@link PaddingCollator} (right side, so cached teacher states line
 * up with the student's tokens) and attaches the cached teacher outputs as extra arrays:
 * {@value #INDEX} {@code [B]}, {@value #TEACHER_LOGITS} {@code [B, labels]} and
 * {@code teacher_hidden.<l>} {@code [B, T, H]} for each cached layer.
 */
public final class DistillCollator implements Collator<DistillCollator.Indexed> {
    public static final String INDEX = "example_index";
    public static final String TEACHER_LOGITS = "teacher_logits";
    public static final String TEACHER_HIDDEN = "teacher_hidden.";

    /** An example and its position in the dataset the cache was computed on. */
    public record Indexed(int index, Example example) {
    }

    private final PaddingCollator<Example> pad;
    private final TeacherCache cache;

    public DistillCollator(int padId, int maxLength, TeacherCache cache) {
        this.pad = PaddingCollator.dynamic(padId, maxLength, true);
        this.cache = cache;
    }

    /** {@code examples} numbered in order. */
    public static List<Indexed> index(List<Example> examples) {
        List<Indexed> out = new ArrayList<>(examples.size());
        for (int i = 0; i < examples.size(); i++) {
            out.add(new Indexed(i, examples.get(i)));
        }
        return out;
    }

    @Override
    public Batch collate(List<Indexed> examples) {
        List<Example> ex = new ArrayList<>(examples.size());
        int[] idx = new int[examples.size()];
        for (int i = 0; i < idx.length; i++) {
            ex.add(examples.get(i).example());
            idx[i] = examples.get(i).index();
            if (idx[i] < 0 || idx[i] >= cache.size()) {
                throw new IllegalArgumentException("example index " + idx[i] + " is outside the teacher cache's "
                        + cache.size() + " examples");
            }
        }
        Batch b = pad.collate(ex);
        Map<String, INDArray> extra = new LinkedHashMap<>(b.extra());
        extra.put(INDEX, Nd4j.createFromArray(idx));
        extra.put(TEACHER_LOGITS, cache.logits(idx));
        for (int layer : cache.hiddenLayers()) {
            extra.put(TEACHER_HIDDEN + layer, cache.hidden(layer, idx, b.seqLength()));
        }
        return new Batch(b.inputIds(), b.attentionMask(), b.tokenTypeIds(), b.labels(), extra);
    }
}
