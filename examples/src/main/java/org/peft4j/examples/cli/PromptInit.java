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

    static void resolve(PeftConfig config, Tokenizer tokenizer) {
        if (config instanceof PromptTuningConfig c && c.init() == PromptTuningConfig.Init.TEXT && c.initText() != null
                && !c.initText().isEmpty()) {
            c.setInitText(c.initText(), tokenizer.encode(c.initText()).ids());
        }
    }
}
