package org.peft4j.prompt;

import com.fasterxml.jackson.annotation.JsonProperty;

import java.util.Locale;
import java.util.Map;

/**
 * PEFT's {@code PromptTuningConfig} ({@code peft_type = "PROMPT_TUNING"}): {@code prompt_tuning_init}
 * ({@code RANDOM}, {@code TEXT}, {@code SAMPLE_VOCAB}), {@code prompt_tuning_init_text},
 * {@code tokenizer_name_or_path}, {@code tokenizer_kwargs}.
 */
public final class PromptTuningConfig extends PromptLearningConfig {
    public enum Init { RANDOM, TEXT, SAMPLE_VOCAB }

    @JsonProperty("prompt_tuning_init")
    private String promptTuningInit = "RANDOM";
    @JsonProperty("prompt_tuning_init_text")
    private String promptTuningInitText;
    @JsonProperty("tokenizer_name_or_path")
    private String tokenizerNameOrPath;
    @JsonProperty("tokenizer_kwargs")
    private Map<String, Object> tokenizerKwargs;

    /** Token ids of {@code prompt_tuning_init_text} for {@code TEXT} init (not part of the file). */
    private int[] initTextTokenIds;

    @Override
    public String peftType() {
        return "PROMPT_TUNING";
    }

    public Init init() {
        try {
            return Init.valueOf(promptTuningInit.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException | NullPointerException e) {
            throw new IllegalArgumentException("prompt_tuning_init must be RANDOM, TEXT or SAMPLE_VOCAB, got " + promptTuningInit);
        }
    }

    public PromptTuningConfig setInit(Init init) {
        this.promptTuningInit = init.name();
        return this;
    }

    public String initText() {
        return promptTuningInitText;
    }

    /**
     * {@code TEXT} init: the text (written to the file) and its token ids from the model's
     * tokenizer (PEFT tokenizes with {@code tokenizer_name_or_path}; peft4j takes the ids).
     */
    public PromptTuningConfig setInitText(String text, int[] tokenIds) {
        this.promptTuningInitText = text;
        this.initTextTokenIds = tokenIds == null ? null : tokenIds.clone();
        return this;
    }

    public PromptTuningConfig setTokenizerNameOrPath(String path) {
        this.tokenizerNameOrPath = path;
        return this;
    }

    public String tokenizerNameOrPath() {
        return tokenizerNameOrPath;
    }

    int[] initTextTokenIds() {
        return initTextTokenIds;
    }

    @Override
    public PromptTuningConfig copy() {
        PromptTuningConfig c = (PromptTuningConfig) super.copy();
        c.initTextTokenIds = initTextTokenIds;
        return c;
    }

    @Override
    public void validate() {
        super.validate();
        if (init() == Init.TEXT && (promptTuningInitText == null || promptTuningInitText.isEmpty())) {
            throw new IllegalArgumentException("prompt_tuning_init TEXT needs prompt_tuning_init_text");
        }
    }
}
