package org.peft4j.examples.cli;

import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.tokenizer.Tokenizer;
import org.peft4j.prompt.PromptTuningConfig;

/**
 * {@code prompt_tuning_init: TEXT} from a YAML recipe: PEFT tokenizes {@code prompt_tuning_init_text}
 * with the model's tokenizer ({@code tokenizer(text)["input_ids"]}, special tokens included); the
 * CLI does the same with the model's tokenizer and hands the ids to the config.
 */
final class PromptInit {
    private PromptInit() {
    }

    /**
     * Fails before training when the recipe's longest example plus the prompt method's virtual
     * tokens (prompt tuning / P-tuning: positions 0..n+T-1; prefix tuning: real tokens at n..n+T-1)
     * cannot fit the model's positions: the error names both keys.
     */
    static void checkLength(PeftConfig config, int maxLength, int maxPositions, String recipe) {
        if (!(config instanceof org.peft4j.prompt.PromptLearningConfig c)) {
            return;
        }
        c.validate();   // num_virtual_tokens present and positive (named otherwise)
        if (c.totalVirtualTokens() + (long) maxLength > maxPositions) {
            throw new CliException(recipe + ": peft.num_virtual_tokens " + c.totalVirtualTokens() + " + data.max_length "
                    + maxLength + " = " + (c.totalVirtualTokens() + maxLength) + " exceeds the model's " + maxPositions
                    + " positions; lower data.max_length to at most " + (maxPositions - c.totalVirtualTokens()));
        }
    }

    static void resolve(PeftConfig config, Tokenizer tokenizer) {
        if (config instanceof PromptTuningConfig c && c.init() == PromptTuningConfig.Init.TEXT && c.initText() != null
                && !c.initText().isEmpty()) {
            c.setInitText(c.initText(), tokenizer.encode(c.initText()).ids());
        }
    }
}
