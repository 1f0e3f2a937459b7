package org.peft4j.spark;

import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.peft.MixedBatch;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.train.Batch;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.PaddingCollator;

import java.io.Serializable;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Scores a DataFrame with one base model and many adapters, the adapter of each row named by a
 * column: every executor loads the base and all adapters once ({@link Replicas}), and each
 * batch of rows runs as one mixed-adapter batch ({@link PeftModel#mixedBatch}), so rows of
 * different adapters share the frozen base's matmuls. A row whose adapter column is null or
 * {@code __base__} is scored by the base model alone.
 *
 * <p>Adds {@code prediction} (int, the arg-max class) and {@code logits} (array of float) to the rows.
 */
public final class SparkBatchScorer {
    private SparkBatchScorer() {
    }

    /**
     * @param adapters        adapter name → PEFT adapter folder every executor can read
     * @param textColumn      text (tokenized on executors) or an array of token ids
     * @param adapterColumn   the adapter name of each row
     * @param batchSize       rows per mixed batch
     * @param threadsPerTask  ND4J threads per task (0: ND4J's default)
     */
    public record Spec(ModelSource source, Map<String, String> adapters, String textColumn, String adapterColumn, int maxLength,
                       int batchSize, int threadsPerTask) implements Serializable {
        public Spec {
            if (source == null || adapters == null || adapters.isEmpty()) {
                throw new IllegalArgumentException("scoring needs a model source and at least one adapter");
            }
            if (maxLength <= 0 || batchSize <= 0) {
                throw new IllegalArgumentException("max_length and batch_size must be positive");
            }
            adapters = new LinkedHashMap<>(adapters);
        }

        String replicaKey() {
            return "score|" + source.key() + "|" + adapters;
        }
    }

    public static Dataset<Row> score(Dataset<Row> data, Spec spec) {
        List<String> cols = Arrays.asList(data.columns());
        for (String c : List.of(spec.textColumn(), spec.adapterColumn())) {
            if (!cols.contains(c)) {
                throw new IllegalArgumentException("the DataFrame has no column '" + c + "' (columns: " + cols + ")");
            }
        }
        int textIdx = cols.indexOf(spec.textColumn());
        int adapterIdx = cols.indexOf(spec.adapterColumn());
        StructType schema = data.schema()
                .add("prediction", DataTypes.IntegerType, false)
                .add("logits", DataTypes.createArrayType(DataTypes.FloatType, false), false);
        JavaRDD<Row> out = data.javaRDD().mapPartitions(rows -> scorePartition(rows, spec, textIdx, adapterIdx));
        return data.sparkSession().createDataFrame(out, schema);
    }

    /** Base plus every adapter, loaded once per executor task slot. */
    static final class Scorer {
        final ModelSource.Loaded base;
        final PeftModel peft;

        Scorer(Spec spec) {
            this.base = spec.source().load();
            PeftModel pm = null;
            for (Map.Entry<String, String> a : spec.adapters().entrySet()) {
                if (pm == null) {
                    pm = PeftModel.load(base.model(), Path.of(a.getValue()), a.getKey());
                } else {
                    pm.loadAdapter(Path.of(a.getValue()), a.getKey());
                }
            }
            this.peft = pm;
            peft.eval();
        }
    }

    private static Iterator<Row> scorePartition(Iterator<Row> rows, Spec spec, int textIdx, int adapterIdx) {
        if (spec.threadsPerTask() > 0) {
            Nd4j.getEnvironment().setMaxThreads(spec.threadsPerTask());
        }
        String key = spec.replicaKey();
        Scorer s = Replicas.acquire(key, () -> new Scorer(spec));
        try {
            int pad = s.base.tokenizer() == null ? s.base.model().config().padTokenId() : Math.max(s.base.tokenizer().padId(), 0);
            PaddingCollator<Example> collator = PaddingCollator.dynamic(pad, spec.maxLength(), true);
            List<Row> out = new ArrayList<>();
            List<Row> pending = new ArrayList<>();
            while (rows.hasNext()) {
                pending.add(rows.next());
                if (pending.size() == spec.batchSize() || !rows.hasNext()) {
                    scoreBatch(s, spec, collator, pending, textIdx, adapterIdx, out);
                    pending.clear();
                }
            }
            return out.iterator();
        } finally {
            Replicas.release(key, s);
        }
    }

    private static void scoreBatch(Scorer s, Spec spec, PaddingCollator<Example> collator, List<Row> rows, int textIdx,
                                   int adapterIdx, List<Row> out) {
        List<Example> ex = new ArrayList<>(rows.size());
        List<String> names = new ArrayList<>(rows.size());
        for (Row r : rows) {
            Sample sm = SparkTrainer.toSample(RowFactory.create(r.get(textIdx), 0), List.of("_", "_"), spec.textColumn(), "-", -1);
            int[] ids;
            if (sm.ids() != null) {
                ids = sm.ids().length > spec.maxLength() ? Arrays.copyOf(sm.ids(), spec.maxLength()) : sm.ids();
            } else {
                if (s.base.tokenizer() == null) {
                    throw new IllegalArgumentException("column '" + spec.textColumn() + "' holds text but the model has no tokenizer");
                }
                ids = s.base.tokenizer().encode(sm.text(), spec.maxLength(), true).ids();
            }
            ex.add(new Example(ids, 0));
            Object a = r.get(adapterIdx);
            names.add(a == null ? MixedBatch.BASE : a.toString());
        }
        Batch b = collator.collate(ex);
        INDArray logits;
        try (NoGrad ignored = NoGrad.enter(); MixedBatch mb = s.peft.mixedBatch(names)) {
            logits = s.base.model().forward(b.inputIds(), b.attentionMask(), b.tokenTypeIds()).value();   // [B, C]
        }
        for (int i = 0; i < rows.size(); i++) {
            float[] l = logits.getRow(i).dup().data().asFloat();
            int best = 0;
            for (int c = 1; c < l.length; c++) {
                if (l[c] > l[best]) {
                    best = c;
                }
            }
            Object[] vals = new Object[rows.get(i).length() + 2];
            for (int c = 0; c < rows.get(i).length(); c++) {
                vals[c] = rows.get(i).get(c);
            }
            vals[vals.length - 2] = best;
            vals[vals.length - 1] = l;   // the row encoder takes a primitive array for array<float>
            out.add(RowFactory.create(vals));
        }
    }
}
