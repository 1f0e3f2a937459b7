package org.peft4j.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.tensor.Rng;

/**
 * The leak check: resident memory after N training steps against after the first {@code early}
 * steps, on a small BERT (2 layers, hidden 128, 4 heads, intermediate 512, vocabulary 30522,
 * batch 8 × 64) so that 1,000 steps take seconds rather than the ~25 minutes MiniLM would. The
 * code path is the same as MiniLM's (same modules, ops, LoRA wrapper and AdamW).
 *
 * <p>RSS is read after {@code System.gc()} and a pause for ND4J's deallocator thread, twice, so
 * that garbage waiting for collection does not count: what remains is what the process retains.
 */
public final class LeakCheck {
    private LeakCheck() {
    }

    public static BertConfig smallConfig() {
        return BertConfig.builder().vocabSize(30522).hiddenSize(128).numHiddenLayers(2).numAttentionHeads(4)
                .intermediateSize(512).maxPositionEmbeddings(128).hiddenAct("gelu")
                .classifierPooling(BertConfig.Pooling.MEAN).numLabels(MiniLm.NUM_LABELS).build();
    }

    public static ObjectNode run(int steps, int early) {
        return run(steps, early, MiniLm.Mode.LORA);
    }

    public static ObjectNode run(int steps, int early, MiniLm.Mode mode) {
        BertConfig c = smallConfig();
        BertForSequenceClassification m = new BertForSequenceClassification(c, new Rng(MiniLm.SEED));
        MiniLm.Trainer tr = MiniLm.trainer(mode, m);
        MiniLm.Batch batch = MiniLm.batch(8, 64, c.vocabSize(), MiniLm.SEED);
        ObjectNode out = new ObjectMapper().createObjectNode();
        out.put("mode", mode.name().toLowerCase());
        out.put("config", "BERT 2 layers, hidden 128, 4 heads, intermediate 512, batch 8x64");
        long t0 = System.nanoTime();
        long rssEarly = -1;
        for (int i = 1; i <= steps; i++) {
            tr.step(batch);
            if (i == early) {
                rssEarly = settledRssKb();
            }
        }
        long rssEnd = settledRssKb();
        out.put("steps", steps);
        out.put("early_step", early);
        out.put("rss_kb_early", rssEarly);
        out.put("rss_kb_end", rssEnd);
        out.put("growth", (double) rssEnd / rssEarly - 1.0);
        out.put("hwm_kb", ProcMem.read().hwmKb());
        out.put("seconds", (System.nanoTime() - t0) / 1e9);
        return out;
    }

    /** RSS after two full collections, each followed by a pause for the native deallocator thread. */
    static long settledRssKb() {
        for (int i = 0; i < 2; i++) {
            System.gc();
            try {
                Thread.sleep(300);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        return ProcMem.read().rssKb();
    }
}
