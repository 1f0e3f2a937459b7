package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.data.TextLines;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.peft.TaskType;
import org.peft4j.core.tokenizer.Tokenizer;
import org.peft4j.core.train.CausalLm;
import org.peft4j.core.train.DataLoader;
import org.peft4j.core.train.Dataset;
import org.peft4j.core.train.LogitsFunction;
import org.peft4j.core.train.PaddingCollator;
import org.peft4j.core.train.TokenExample;
import org.peft4j.core.train.TrainResult;
import org.peft4j.core.train.TrainingConfig;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * {@code task: causal_lm}: next-token training of a decoder (GPT-2, LLaMA family) on text lines
 * (a JSONL file's text field, or a plain .txt file); evaluated by loss per token and perplexity
 * ({@link CausalLm}).
 */
final class CausalLmTask implements TrainTask {
    /** Sequences per evaluation batch. */
    static final int EVAL_BATCH = 16;

    @Override
    public String name() {
        return CAUSAL_LM;
    }

    @Override
    public TaskType peftTaskType() {
        return TaskType.CAUSAL_LM;
    }

    @Override
    public Run run(TrainRecipe recipe, PrintStream out) throws IOException {
        JsonNode data = recipe.data();
        TrainingConfig cfg = recipe.training();
        String textField = data.path("text_field").asText("text");
        String trainSpec = recipe.dataText("train", recipe.file() + ": data.train (a .jsonl file with a text field, or a .txt file)");
        Models.Base base = Models.requireCausalLm(Models.load(recipe.model(), cfg.seed()), "task " + CAUSAL_LM);
        try (base) {
            Tokenizer tok = base.requireTokenizer("training");
            int limit = Math.min(recipe.maxLength(), base.decoder.maxPositions());
            List<TokenExample> trainEx = DemoCommand.limit(examples(Path.of(trainSpec), textField, tok, limit),
                    recipe.dataInt("train_limit", 0));
            List<TokenExample> evalEx = data.has("eval") ? DemoCommand.limit(
                    examples(Path.of(data.get("eval").asText()), textField, tok, limit), recipe.dataInt("eval_limit", 0)) : null;
            DecoderLM model = base.decoder;
            out.printf(Locale.ROOT, "model: %s, task %s; data: %s (%s sequences), max %d tokens%n", base.displayName(), CAUSAL_LM,
                    trainSpec, Fmt.count(trainEx.size()), limit);
            PromptInit.resolve(recipe.peft(), tok);   // prompt_tuning_init TEXT: the text's token ids
            PromptInit.checkLength(recipe.peft(), limit, base.decoder.maxPositions(), recipe.file().toString());
            PeftModel pm = Peft.apply(model, recipe.peft());
            out.println(pm.printTrainableParameters());
            List<Integer> eos = GenerateCommand.eosIds(model);
            int padId = tok.padId() >= 0 ? tok.padId() : eos.isEmpty() ? 0 : eos.get(0);
            PaddingCollator<TokenExample> collator = PaddingCollator.dynamic(padId, limit, true);
            // the decoder itself (now wrapped by pm) computes the logits [B, T, V]
            LogitsFunction logits = (m, b) -> model.forward(b.inputIds(), b.attentionMask());
            long t0 = System.nanoTime();
            TrainResult r = TrainTask.train(pm, null, CausalLm.loss(logits), CausalLm.evaluation(logits),
                    DataLoader.forTraining(Dataset.of(trainEx), collator, cfg),
                    evalEx == null ? null : DataLoader.forEvaluation(Dataset.of(evalEx), collator, EVAL_BATCH), cfg, out, recipe.resume());
            double seconds = Fmt.secondsSince(t0);
            ObjectNode dataInfo = recipe.dataInfo(trainSpec, trainEx.size(), evalEx == null ? null : data.get("eval").asText(),
                    evalEx == null ? 0 : evalEx.size(), textField, null, null, limit);
            return new Run(pm, r, seconds, null, dataInfo);
        }
    }

    /** Token sequences for language modelling: one per JSONL line (its text field) or per non-blank .txt line. */
    static List<TokenExample> examples(Path file, String textField, Tokenizer tok, int maxLen) throws IOException {
        return CausalLm.examples(TextLines.read(file, textField), tok, maxLen, file.toString());
    }
}
