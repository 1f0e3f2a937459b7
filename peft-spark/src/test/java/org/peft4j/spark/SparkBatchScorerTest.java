package org.peft4j.spark;

import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.MixedBatch;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Many adapters on one base in one Spark pass, against one model per adapter, row by row. */
class SparkBatchScorerTest {
    static SparkSession spark;

    @BeforeAll
    static void start() {
        spark = SparkTestSupport.session("local[2]");
    }

    @AfterAll
    static void stop() {
        if (spark != null) {
            spark.stop();
        }
        Replicas.clear();
    }

    static ModelSource source() {
        return ModelSources.classifier(SparkTestSupport.tinyBert().toString(), SparkTestSupport.LABELS, "mean", false, null, 3);
    }

    /** An adapter folder with random (non-zero) LoRA and head values drawn from {@code seed}. */
    static Path adapter(Path dir, long seed) {
        ModelSource.Loaded base = source().load();
        PeftConfig cfg = PeftConfig.fromJson("{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":4,\"target_modules\":[\"query\",\"value\"],"
                + "\"modules_to_save\":[\"classifier\"]}", "test");
        cfg.setSeed(seed);
        PeftModel pm = Peft.apply(base.model(), cfg);
        Rng rng = new Rng(seed);
        for (Parameter p : pm.trainableParameters().values()) {
            float[] v = new float[(int) p.length()];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (rng.nextGaussian() * 0.3);
            }
            p.value().assign(Nd4j.create(v, p.shape(), 'c'));
        }
        pm.save(dir);
        return dir;
    }

    @Test
    void eachRowIsScoredByItsOwnAdapter(@TempDir Path tmp) {
        Map<String, String> adapters = new LinkedHashMap<>();
        adapters.put("a", adapter(tmp.resolve("a"), 21).toString());
        adapters.put("b", adapter(tmp.resolve("b"), 22).toString());
        List<int[]> ids = SparkTestSupport.ids(30, 9);
        String[] which = {"a", "b", null};
        StructType schema = new StructType()
                .add("input_ids", DataTypes.createArrayType(DataTypes.IntegerType), false)
                .add("adapter", DataTypes.StringType, true)
                .add("row", DataTypes.IntegerType, false);
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < ids.size(); i++) {
            rows.add(RowFactory.create(Arrays.asList(Arrays.stream(ids.get(i)).boxed().toArray(Integer[]::new)), which[i % 3], i));
        }
        Dataset<Row> df = spark.createDataFrame(rows, schema).repartition(2);
        List<Row> scored = SparkBatchScorer.score(df, new SparkBatchScorer.Spec(source(), adapters, "input_ids", "adapter", 32, 8, 0))
                .collectAsList();
        assertEquals(30, scored.size());

        // reference: one model per adapter (and the bare base), each row alone, no mixed batch
        Map<String, PeftModel> single = new LinkedHashMap<>();
        Map<String, ModelSource.Loaded> bases = new LinkedHashMap<>();
        for (String n : List.of("a", "b")) {
            ModelSource.Loaded base = source().load();
            single.put(n, PeftModel.load(base.model(), Path.of(adapters.get(n)), n));
            single.get(n).eval();
            bases.put(n, base);
        }
        ModelSource.Loaded bare = source().load();
        bare.model().eval();
        double worst = 0;
        for (Row r : scored) {
            int i = r.getInt(r.fieldIndex("row"));
            String a = which[i % 3];
            INDArray x = Nd4j.createFromArray(Arrays.stream(ids.get(i)).mapToLong(v -> v).toArray()).reshape(1, -1);
            INDArray mask = Nd4j.onesLike(x).castTo(org.nd4j.linalg.api.buffer.DataType.FLOAT);
            float[] expected;
            try (NoGrad ignored = NoGrad.enter()) {
                var model = a == null ? bare.model() : bases.get(a).model();
                expected = model.forward(x, mask, null).value().dup().data().asFloat();
            }
            List<Float> got = r.getList(r.fieldIndex("logits"));
            for (int c = 0; c < expected.length; c++) {
                worst = Math.max(worst, Math.abs(expected[c] - got.get(c)));
            }
            int best = expected[1] > expected[0] ? 1 : 0;
            assertEquals(best, r.getInt(r.fieldIndex("prediction")), "row " + i);
        }
        // fp32: the mixed batch pads rows to the batch's longest and runs row groups through each adapter
        assertTrue(worst < 1e-5, "max |Δ logit| " + worst);
        assertEquals(MixedBatch.BASE, "__base__");
    }
}
