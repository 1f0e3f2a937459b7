package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.data.TextExample;
import org.peft4j.core.model.SequenceClassifier;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.decoder.DecoderForSequenceClassification;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.peft.TaskType;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tokenizer.Tokenizer;
import org.peft4j.core.train.DataLoader;
import org.peft4j.core.train.Dataset;
import org.peft4j.core.train.EvalFunction;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.Metrics;
import org.peft4j.core.train.PaddingCollator;
import org.peft4j.core.train.TrainResult;
import org.peft4j.core.train.TrainingConfig;

import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code task: sequence_classification}: labelled text ({@code imdb} or a JSONL/CSV/TSV file) on a
 * BERT encoder with a new classifier head, or on a decoder (GPT-2, LLaMA family) with a new
 * {@code score} head read at the last real token (or the head of a classification checkpoint);
 * evaluated by accuracy and mean cross-entropy.
 */
final class SequenceClassificationTask implements TrainTask {
    @Override
    public String name() {
        return SEQ_CLS;
    }

    @Override
    public TaskType peftTaskType() {
        return TaskType.SEQ_CLS;
    }

    @Override
    public Run run(TrainRecipe recipe, PrintStream out) throws IOException {
        JsonNode data = recipe.data();
        TrainingConfig cfg = recipe.training();
        int requestedLen = recipe.maxLength();
        List<String> labelNames = new ArrayList<>();
        data.path("labels").forEach(x -> labelNames.add(x.asText()));
        String textField = data.path("text_field").asText("text");
        String labelField = data.path("label_field").asText("label");
        String trainSpec = recipe.dataText("train", recipe.file() + ": data.train ('imdb' or a file)");
        DataSources.Labelled train = DataSources.load(trainSpec, "train", textField, labelField, labelNames);
        DataSources.Labelled eval = data.has("eval")
                ? DataSources.load(data.get("eval").asText(), "test", textField, labelField, labelNames) : null;
        List<String> labels = train.labels();
        if (eval != null && DataSources.numClasses(eval.examples()) > labels.size()) {
            labels = Classification.defaultLabels(Math.max(labels.size(), DataSources.numClasses(eval.examples())));
        }
        List<TextExample> trainText = DemoCommand.limit(train.examples(), recipe.dataInt("train_limit", 0));
        List<TextExample> evalText = eval == null ? null : DemoCommand.limit(eval.examples(), recipe.dataInt("eval_limit", 0));

        Models.Base base = Models.load(recipe.model(), cfg.seed());
        try (base) {
            // a sequence may not be longer than the model's position table: an explicit data.max_length
            // beyond it is an error before anything runs; the default (128) is capped at it
            int maxPositions = base.maxPositions();
            if (recipe.data().has("max_length") && requestedLen > maxPositions) {
                throw new CliException(recipe.file() + ": data.max_length " + requestedLen + " is longer than "
                        + base.displayName() + " allows (" + (base.kind == Models.Kind.ENCODER ? "max_position_embeddings "
                        : "max positions ") + maxPositions + "); lower it");
            }
            int maxLen = Math.min(requestedLen, maxPositions);
            Tokenizer tok = base.requireTokenizer("training");
            SequenceClassifier model = newClassifier(base, labels, tok, cfg.seed());
            if (model.numLabels() < labels.size()) {
                throw new CliException("the data has " + labels.size() + " classes but " + base.displayName()
                        + "'s classifier has " + model.numLabels());
            }
            if (model instanceof DecoderForSequenceClassification d) {
                maxLen = Math.min(maxLen, d.backbone().maxPositions());
                // PEFT's SEQ_CLS task trains and saves the new head (modules_to_save gets "score")
                List<String> save = recipe.peft().modulesToSave() == null ? new ArrayList<>()
                        : new ArrayList<>(recipe.peft().modulesToSave());
                if (!save.contains(DecoderForSequenceClassification.SCORE) && recipe.peft().peftType() != null) {
                    save.add(DecoderForSequenceClassification.SCORE);
                    recipe.peft().setModulesToSave(save);
                }
            }
            List<Example> trainEx = Classification.encode(tok, trainText, maxLen);
            List<Example> evalEx = evalText == null ? null : Classification.encode(tok, evalText, maxLen);
            out.printf(Locale.ROOT, "model: %s, task %s, %d labels %s%n", base.displayName(), SEQ_CLS, labels.size(), labels);
            out.printf(Locale.ROOT, "data: %s (%s examples)%s, max %d tokens%n", train.source(), Fmt.count(trainEx.size()),
                    evalEx == null ? "" : ", eval " + eval.source() + " (" + Fmt.count(evalEx.size()) + ")", maxLen);
            PromptInit.resolve(recipe.peft(), tok);   // prompt_tuning_init TEXT: the text's token ids
            PromptInit.checkLength(recipe.peft(), maxLen, model.backbone().maxPositions(), recipe.file().toString());
            PeftModel pm = Peft.apply((org.peft4j.core.nn.Module) model, recipe.peft());
            out.println(pm.printTrainableParameters());
            int padId = Classification.padId(tok, model);
            PaddingCollator<Example> collator = PaddingCollator.dynamic(padId, maxLen, true);
            EvalFunction evalFn = Metrics.classification((m, b) -> Classification.logits(model, b));
            long t0 = System.nanoTime();
            TrainResult r = TrainTask.train(pm, model instanceof BertForSequenceClassification b ? b.bert().dropoutRng() : null,
                    Classification.loss(model), evalFn,
                    DataLoader.forTraining(Dataset.of(trainEx), collator, cfg),
                    evalEx == null ? null : DataLoader.forEvaluation(Dataset.of(evalEx), collator, Classification.EVAL_BATCH),
                    cfg, out, recipe.resume());
            double seconds = Fmt.secondsSince(t0);
            ObjectNode dataInfo = recipe.dataInfo(train.source(), trainEx.size(), eval == null ? null : eval.source(),
                    evalEx == null ? 0 : evalEx.size(), textField, labelField, labels, maxLen);
            return new Run(pm, r, seconds, Classification.TaskInfo.of(model, maxLen, recipe.peft().baseModelNameOrPath()),
                    dataInfo);
        }
    }

    /**
     * The classifier to train: BERT — the classification checkpoint's, or a new head on the
     * encoder; a decoder (GPT-2, LLaMA family) — a {@code …ForSequenceClassification} checkpoint's,
     * or a new {@code score} head on the causal LM whose {@code pad_token_id} is
     * {@link Classification#decoderPadId} (the collator pads with it).
     */
    static SequenceClassifier newClassifier(Models.Base base, List<String> labels, Tokenizer tok, long seed) {
        if (base.kind == Models.Kind.DECODER) {
            if (base.decoderClassifier != null) {
                return base.decoderClassifier;
            }
            return DecoderForSequenceClassification.withNewHead(base.decoder, labels,
                    Classification.decoderPadId(tok, base.decoder), new Rng(seed));
        }
        return base.seqClsCheckpoint ? Models.loadSeqCls(base.dir, seed)
                : BertForSequenceClassification.withNewHead(base.encoder, labels, Models.defaultPooling(base.encoder), new Rng(seed));
    }
}
