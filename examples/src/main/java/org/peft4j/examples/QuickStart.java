package org.peft4j.examples;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.data.Imdb;
import org.peft4j.core.model.ModelZoo;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.peft.TaskType;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tokenizer.Tokenizer;
import org.peft4j.core.train.DataLoader;
import org.peft4j.core.train.Dataset;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.PaddingCollator;
import org.peft4j.core.train.Trainer;
import org.peft4j.core.train.TrainingConfig;
import org.peft4j.lora.LoraConfig;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;

/**
 * The README's Java example: load the bundled MiniLM, apply LoRA, print the trainable
 * parameters, train, save the adapter, reload it into a fresh model and merge it.
 *
 * <p>{@code java ... org.peft4j.examples.QuickStart [STEPS] [ADAPTER_DIR]} (defaults 100 steps,
 * {@code ./quickstart-adapter}). A test runs it on a few steps.
 */
public final class QuickStart {
    /** Two reviews the example classifies with the trained, the reloaded and the merged model. */
    static final List<String> PROBES = List.of("A wonderful film, I loved it.", "Boring and far too long.");

    /** What the example computed: logits {@code [2, 2]} of {@link #PROBES} from each model. */
    public record Result(String trainableParameters, INDArray trained, INDArray reloaded, INDArray merged) {
    }

    public static void main(String[] args) {
        int steps = args.length > 0 ? Integer.parseInt(args[0]) : 100;
        Path dir = Path.of(args.length > 1 ? args[1] : "quickstart-adapter");
        run(steps, dir, System.out);
    }

    public static Result run(int steps, Path adapterDir, PrintStream out) {
        try (ModelZoo.Pretrained minilm = ModelZoo.miniLmL6()) {
            Tokenizer tokenizer = minilm.tokenizer();

            // 1. MiniLM + a new 2-class head on the mean of its token states (it has no pooler)
            BertForSequenceClassification model = BertForSequenceClassification.withNewHead(
                    minilm.model(), Imdb.LABELS, BertConfig.Pooling.MEAN, new Rng(42));

            // 2. LoRA r 8 on the attention query/value projections; the head trains in full
            LoraConfig config = LoraConfig.builder()
                    .r(8).loraAlpha(16).loraDropout(0.1)
                    .targetModules("query", "value")
                    .modulesToSave("classifier")
                    .taskType(TaskType.SEQ_CLS).seed(42)
                    .build();
            PeftModel peft = Peft.apply(model, config);
            String trainable = peft.printTrainableParameters();
            out.println(trainable);   // trainable params: 74,498 || all params: 22,640,644 || trainable%: 0.3290

            // 3. train on the bundled IMDB reviews (128 tokens each)
            List<Example> train = Imdb.bundledSplit().train().stream()
                    .map(r -> new Example(tokenizer.encode(r.text(), 128, true).ids(), r.label()))
                    .toList();
            TrainingConfig training = TrainingConfig.builder()
                    .maxSteps(steps).batchSize(16).learningRate(1e-3).warmupRatio(0.06).seed(42)
                    .build();
            Trainer.builder(peft, peft.trainableParameters(),
                            (m, batch) -> Ops.crossEntropy(model.forward(batch.inputIds(), batch.attentionMask(), null),
                                    batch.labels(), Ops.Reduction.MEAN),
                            training)
                    .progressStream(out)
                    .build()
                    .fit(DataLoader.forTraining(Dataset.of(train), PaddingCollator.dynamic(tokenizer.padId()), training));
            INDArray trained = logits(peft, model, tokenizer);

            // 4. save the adapter (PEFT's folder layout) and load it into a fresh MiniLM
            peft.save(adapterDir);
            INDArray again;
            INDArray mergedLogits;
            try (ModelZoo.Pretrained other = ModelZoo.miniLmL6()) {
                BertForSequenceClassification fresh = BertForSequenceClassification.withNewHead(
                        other.model(), Imdb.LABELS, BertConfig.Pooling.MEAN, new Rng(7));
                PeftModel reloaded = PeftModel.load(fresh, adapterDir);
                again = logits(reloaded, fresh, tokenizer);

                // 5. merge LoRA into the weights: a plain model that computes the same
                BertForSequenceClassification merged = (BertForSequenceClassification) reloaded.mergeAndUnload();
                mergedLogits = logits(merged, merged, tokenizer);
            }
            out.println("saved to " + adapterDir.toAbsolutePath());
            out.println("reloaded - trained: max |diff| = " + again.sub(trained).amaxNumber());
            out.println("merged - reloaded:  max |diff| = " + mergedLogits.sub(again).amaxNumber());
            return new Result(trainable, trained, again, mergedLogits);
        }
    }

    /** Logits {@code [2, 2]} of the probe reviews, in eval mode (no dropout), without gradients. */
    static INDArray logits(org.peft4j.core.nn.Module root, BertForSequenceClassification model, Tokenizer tokenizer) {
        root.eval();
        try (NoGrad ignored = NoGrad.enter()) {
            return model.forward(tokenizer.encodeBatch(PROBES, 128, true, Tokenizer.Padding.LONGEST)).value().dup();
        }
    }
}
