package org.peft4j.quant.bench;

import org.peft4j.core.data.Imdb;
import org.peft4j.core.data.TextExample;
import org.peft4j.core.model.ModelZoo;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.peft.TaskType;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tokenizer.Encoding;
import org.peft4j.core.tokenizer.HfTokenizer;
import org.peft4j.core.train.DataLoader;
import org.peft4j.core.train.Dataset;
import org.peft4j.core.train.EvalFunction;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.LossFunction;
import org.peft4j.core.train.Metrics;
import org.peft4j.core.train.PaddingCollator;
import org.peft4j.core.train.ScheduleType;
import org.peft4j.core.train.Trainer;
import org.peft4j.core.train.TrainingConfig;
import org.peft4j.lora.LoraConfig;
import org.peft4j.quant.QuantConfig;
import org.peft4j.quant.Quantizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * QLoRA vs fp32 LoRA on the bundled all-MiniLM-L6-v2 for IMDB sentiment, same split, same budget,
 * same seeds; the only difference is {@code Quantizer.quantize(model, QuantConfig.nf4())} (NF4,
 * block 64, double quantization of every linear layer but the classifier) before {@code Peft.apply}.
 *
 * <p>Recipe: {@link Imdb#bundledSplit()} (2,000 train / 1,000 test), MiniLM + a new 2-label head on
 * mean-pooled states, LoRA r 8, alpha 16, dropout 0.1 on {@code query}/{@code value}, the
 * {@code classifier} trained as a module to save; sequences truncated to 128 tokens; AdamW lr 1e-3,
 * weight decay 0.01, linear schedule with 10% warm-up, batch 16, 250 updates (2 epochs), seed 42.
 * Prints test accuracy of each run.
 *
 * <pre>java -Xmx3g -cp $CP org.peft4j.quant.bench.ImdbQloraComparison [fp32|nf4|both] [steps=250] [seq=128] [batch=16]</pre>
 * ({@code CP} as in {@link LlamaMemoryBench}).
 */
public final class ImdbQloraComparison {
    private ImdbQloraComparison() {
    }

    static List<Example> tokenize(HfTokenizer tok, List<TextExample> xs, int seq) {
        List<Example> out = new ArrayList<>(xs.size());
        for (TextExample x : xs) {
            Encoding e = tok.encode(x.text(), seq, true);
            out.add(new Example(e.ids(), x.label()));
        }
        return out;
    }

    static Map<String, Double> run(String mode, int steps, int seq, int batch) {
        long seed = 42;
        try (ModelZoo.Pretrained p = ModelZoo.miniLmL6(new Rng(seed))) {
            BertForSequenceClassification model = BertForSequenceClassification.withNewHead(p.model(), Imdb.LABELS,
                    BertConfig.Pooling.MEAN, new Rng(seed + 1));
            if (mode.equals("nf4")) {
                Quantizer.quantize(model, QuantConfig.nf4());
                System.out.println("quantized: " + Quantizer.stats(model));
            }
            LoraConfig cfg = LoraConfig.builder().r(8).loraAlpha(16).loraDropout(0.1).targetModules("query", "value")
                    .modulesToSave("classifier").taskType(TaskType.SEQ_CLS).seed(seed).build();
            PeftModel pm = Peft.apply(model, cfg);
            System.out.println(mode + ": " + pm.printTrainableParameters());
            Imdb.Split split = Imdb.bundledSplit();
            List<Example> train = tokenize(p.tokenizer(), split.train(), seq);
            List<Example> test = tokenize(p.tokenizer(), split.test(), seq);
            TrainingConfig tc = TrainingConfig.builder().maxSteps(steps).batchSize(batch).learningRate(1e-3).weightDecay(0.01)
                    .warmupRatio(0.1).schedule(ScheduleType.LINEAR).logInterval(25).seed(seed).checkpointInterval(-1).build();
            LossFunction loss = (m, b) -> Ops.crossEntropy(model.forward(b.inputIds(), b.attentionMask(), b.tokenTypeIds()),
                    b.labels(), Ops.Reduction.MEAN);
            EvalFunction eval = Metrics.classification((m, b) -> model.forward(b.inputIds(), b.attentionMask(), b.tokenTypeIds()));
            PaddingCollator<Example> collator = PaddingCollator.dynamic(0, seq, true);
            DataLoader<Example> trainLoader = DataLoader.forTraining(Dataset.of(train), collator, tc);
            DataLoader<Example> testLoader = DataLoader.forEvaluation(Dataset.of(test), collator, 32);
            Trainer trainer = Trainer.builder(pm, pm.trainableParameters(), loss, tc).evalFunction(eval).progress(true).build();
            long t0 = System.nanoTime();
            trainer.fit(trainLoader);
            double trainSecs = (System.nanoTime() - t0) / 1e9;
            Map<String, Double> metrics = trainer.evaluate(testLoader);
            System.out.printf(Locale.ROOT, "%s: test accuracy %.4f, eval_loss %.4f (%d updates, %.0f s training)%n", mode,
                    metrics.get("accuracy"), metrics.get("eval_loss"), steps, trainSecs);
            return metrics;
        }
    }

    public static void main(String[] args) {
        String mode = args.length > 0 ? args[0] : "both";
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 250;
        int seq = args.length > 2 ? Integer.parseInt(args[2]) : 128;
        int batch = args.length > 3 ? Integer.parseInt(args[3]) : 16;
        List<String> modes = mode.equals("both") ? List.of("fp32", "nf4") : List.of(mode);
        StringBuilder summary = new StringBuilder();
        for (String m : modes) {
            Map<String, Double> r = run(m, steps, seq, batch);
            summary.append(String.format(Locale.ROOT, "%s accuracy %.4f; ", m, r.get("accuracy")));
        }
        System.out.println("SUMMARY " + summary + "(steps " + steps + ", seq " + seq + ", batch " + batch + ")");
    }
}
