package org.peft4j.core.peft;

/**
 * The task a PEFT adapter was trained for, with PEFT's spelling ({@code task_type} in
 * {@code adapter_config.json}). It decides, among other things, which output head
 * {@code "all-linear"} leaves alone: the classifier for {@link #SEQ_CLS}.
 */
public enum TaskType {
    SEQ_CLS,
    SEQ_2_SEQ_LM,
    CAUSAL_LM,
    TOKEN_CLS,
    QUESTION_ANS,
    FEATURE_EXTRACTION
}
