package org.peft4j.distill;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/**
 * What the teacher gives the student for one batch; constants, never on a tape.
 *
 * @param logits    {@code [batch, labels]}
 * @param hidden    teacher {@code hidden_states} index → {@code [batch, seq, teacherHidden]} (only the matched layers)
 * @param attention the last layer's attention probabilities {@code [batch, heads, seq, seq]}, or null
 */
public record TeacherTargets(INDArray logits, Map<Integer, INDArray> hidden, INDArray attention) {
    public TeacherTargets {
        if (logits == null || logits.rank() != 2) {
            throw new IllegalArgumentException("teacher logits must be [batch, labels], got "
                    + (logits == null ? "null" : java.util.Arrays.toString(logits.shape())));
        }
        hidden = hidden == null ? Map.of() : Map.copyOf(hidden);
    }
}
