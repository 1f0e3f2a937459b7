package org.peft4j.spark;

import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.peft4j.core.tensor.Rng;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** A local Spark session, the repository's tiny BERT checkpoint and synthetic token-id data. */
final class SparkTestSupport {
    static final List<String> LABELS = List.of("neg", "pos");

    private SparkTestSupport() {
    }

    static SparkSession session(String master) {
        return SparkSession.builder().master(master).appName("peft-spark-test")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", "2")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .getOrCreate();
    }

    /** {@code peft-core/src/test/resources/fixtures/bert-tiny}: hidden 16, 2 layers, vocabulary 50. */
    static Path tinyBert() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.isDirectory(p.resolve("peft-core/src/test/resources/fixtures/bert-tiny"))) {
            p = p.getParent();
        }
        if (p == null) {
            throw new IllegalStateException("cannot find peft-core's bert-tiny fixture above " + Path.of("").toAbsolutePath());
        }
        return p.resolve("peft-core/src/test/resources/fixtures/bert-tiny");
    }

    /** Token-id rows [CLS]=2 … [SEP]=3 of 3–12 ids in [4, 50); label 1 when id 7 occurs more than id 9. */
    static List<int[]> ids(int n, long seed) {
        Rng rng = new Rng(seed);
        List<int[]> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int len = 3 + rng.nextInt(10);
            int[] ids = new int[len + 2];
            ids[0] = 2;
            for (int j = 1; j <= len; j++) {
                ids[j] = 4 + rng.nextInt(46);
            }
            ids[len + 1] = 3;
            out.add(ids);
        }
        return out;
    }

    static int label(int[] ids) {
        int a = 0, b = 0;
        for (int id : ids) {
            a += id == 7 || id < 20 ? 1 : 0;
            b += id == 9 || id >= 35 ? 1 : 0;
        }
        return a > b ? 1 : 0;
    }

    static Dataset<Row> frame(SparkSession spark, List<int[]> ids) {
        StructType schema = new StructType()
                .add("input_ids", DataTypes.createArrayType(DataTypes.IntegerType), false)
                .add("label", DataTypes.IntegerType, false);
        List<Row> rows = new ArrayList<>();
        for (int[] x : ids) {
            Integer[] boxed = new Integer[x.length];
            for (int i = 0; i < x.length; i++) {
                boxed[i] = x[i];
            }
            rows.add(RowFactory.create(java.util.Arrays.asList(boxed), label(x)));
        }
        return spark.createDataFrame(rows, schema);
    }
}
