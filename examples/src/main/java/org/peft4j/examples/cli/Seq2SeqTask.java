package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.data.TextLines;
import org.peft4j.core.model.generate.GenerationConfig;
import org.peft4j.core.model.generate.GenerationResult;
import org.peft4j.core.model.generate.Generator;
import org.peft4j.core.model.t5.T5ForConditionalGeneration;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.peft.TaskType;
import org.peft4j.core.tokenizer.Tokenizer;
import org.peft4j.core.train.DataLoader;
import org.peft4j.core.train.Dataset;
import org.peft4j.core.train.LogitsFunction;
import org.peft4j.core.train.Seq2Seq;
import org.peft4j.core.train.TrainResult;
import org.peft4j.core.train.TrainingConfig;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;

/**
 * {@code task: seq2seq}: teacher-forced training of an encoder-decoder (T5 family) on pairs from
 * a JSONL file ({@code source_field}, default {@code source}; {@code target_field}, default
 * {@code target}): sources right-padded with the pad id, labels with -100, decoder inputs the
 * labels shifted right from {@code decoder_start_token_id}. Evaluated by loss, perplexity and
 * teacher-forced token accuracy, and after training by the exact match of greedy generations
 * on the eval pairs.
 */
final class Seq2SeqTask implements TrainTask {
    static final String SEQ2SEQ = "seq2seq";
    static final int EVAL_BATCH = 16;

    @Override
    public String name() {
        return SEQ2SEQ;
    }

    @Override
    public TaskType peftTaskType() {
        return TaskType.SEQ_2_SEQ_LM;
    }

    @Override
    public Run run(TrainRecipe recipe, PrintStream out) throws IOException {
        JsonNode data = recipe.data();
        TrainingConfig cfg = recipe.training();
        String srcField = data.path("source_field").asText("source");
        String tgtField = data.path("target_field").asText("target");
        String trainSpec = recipe.dataText("train", recipe.file() + ": data.train (a .jsonl file with source and target fields)");
        Models.Base base = Models.requireSeq2Seq(Models.load(recipe.model(), cfg.seed()), "task " + SEQ2SEQ);
        try (base) {
            Tokenizer tok = base.requireTokenizer("training");
            T5ForConditionalGeneration model = base.seq2seq;
            model.config().requireDecoderStartTokenId();
            int limit = Math.min(recipe.maxLength(), model.maxPositions());
            List<Seq2Seq.Example> trainEx = DemoCommand.limit(pairs(Path.of(trainSpec), srcField, tgtField, tok, limit),
                    recipe.dataInt("train_limit", 0));
            List<Seq2Seq.Example> evalEx = data.has("eval") ? DemoCommand.limit(
                    pairs(Path.of(data.get("eval").asText()), srcField, tgtField, tok, limit), recipe.dataInt("eval_limit", 0)) : null;
            out.printf(Locale.ROOT, "model: %s, task %s; data: %s (%s pairs), max %d tokens%n", base.displayName(), SEQ2SEQ,
                    trainSpec, Fmt.count(trainEx.size()), limit);
            PeftModel pm = Peft.apply(model, recipe.peft());
            out.println(pm.printTrainableParameters());
            LogitsFunction logits = (m, b) -> model.forward(b.inputIds(), b.attentionMask(), model.shiftRight(b.labels()), null);
            var collator = Seq2Seq.collator(model.config().padTokenId());
            long t0 = System.nanoTime();
            TrainResult r = TrainTask.train(pm, null, Seq2Seq.loss(logits), Seq2Seq.evaluation(logits),
                    DataLoader.forTraining(Dataset.of(trainEx), collator, cfg),
                    evalEx == null ? null : DataLoader.forEvaluation(Dataset.of(evalEx), collator, EVAL_BATCH), cfg, out, recipe.resume());
            double seconds = Fmt.secondsSince(t0);
            if (evalEx != null) {
                double em = exactMatch(model, evalEx, limit);
                out.printf(Locale.ROOT, "eval exact match (greedy generation): %.4f over %d pairs%n", em, evalEx.size());
            }
            ObjectNode dataInfo = recipe.dataInfo(trainSpec, trainEx.size(), evalEx == null ? null : data.get("eval").asText(),
                    evalEx == null ? 0 : evalEx.size(), srcField, null, null, limit);
            dataInfo.remove("text_field");
            dataInfo.put("source_field", srcField);
            dataInfo.put("target_field", tgtField);
            return new Run(pm, r, seconds, null, dataInfo);
        }
    }

    /** Pairs of a JSONL file's source and target fields, tokenized. */
    static List<Seq2Seq.Example> pairs(Path file, String srcField, String tgtField, Tokenizer tok, int maxLen) throws IOException {
        return Seq2Seq.examples(TextLines.read(file, srcField), TextLines.read(file, tgtField), tok, maxLen, maxLen, file.toString());
    }

    /** The fraction of pairs whose greedy generation (up to the eos token) equals the target ids exactly. */
    static double exactMatch(T5ForConditionalGeneration model, List<Seq2Seq.Example> pairs, int maxLen) {
        if (pairs.isEmpty()) {
            return Double.NaN;
        }
        GenerationConfig g = GenerationConfig.builder().maxNewTokens(maxLen).stopTokenIds(new HashSet<>(model.config().eosTokenIds()))
                .padTokenId(model.config().padTokenId()).build();
        int hits = 0;
        for (int i = 0; i < pairs.size(); i += EVAL_BATCH) {
            List<Seq2Seq.Example> chunk = pairs.subList(i, Math.min(pairs.size(), i + EVAL_BATCH));
            int[][] src = chunk.stream().map(Seq2Seq.Example::source).toArray(int[][]::new);
            GenerationResult r = new Generator(model).generate(src, g);
            for (int b = 0; b < chunk.size(); b++) {
                hits += Arrays.equals(r.tokens(b), chunk.get(b).target()) ? 1 : 0;
            }
        }
        return (double) hits / pairs.size();
    }
}
