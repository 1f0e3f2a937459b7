package org.peft4j.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The shared inputs of one harness run, written once by the coordinator and read by every
 * worker (peft4j and PyTorch alike): {@code <dir>/model} (a Hugging Face folder written by
 * {@link BertForSequenceClassification#save}: config.json + model.safetensors) and
 * {@code <dir>/batch.json} ({@code input_ids}, {@code attention_mask}, {@code labels}).
 */
public final class Export {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Export() {
    }

    /** Builds the benchmark classifier from the bundled weights and writes it and the batch. */
    public static void write(Path dir, BertConfig config, int batch, int seq, long seed) {
        try {
            Files.createDirectories(dir);
            BertForSequenceClassification m = MiniLm.classifier(config, seed);
            m.save(dir.resolve("model"));
            MiniLm.Batch b = MiniLm.batch(batch, seq, config.vocabSize(), seed);
            ObjectNode root = JSON.createObjectNode();
            root.set("input_ids", matrix(b.inputIds()));
            root.set("attention_mask", matrix(b.attentionMask()));
            ArrayNode labels = root.putArray("labels");
            for (long l : b.labels().toLongVector()) {
                labels.add(l);
            }
            Path tmp = dir.resolve("batch.json.tmp");
            JSON.writeValue(tmp.toFile(), root);
            Files.move(tmp, dir.resolve("batch.json"), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the benchmark inputs to " + dir, e);
        }
    }

    private static ArrayNode matrix(INDArray a) {
        ArrayNode rows = JSON.createArrayNode();
        for (int i = 0; i < a.size(0); i++) {
            ArrayNode r = rows.addArray();
            for (long v : a.getRow(i).dup().toLongVector()) {
                r.add(v);
            }
        }
        return rows;
    }

    /** Reads {@code batch.json}. */
    public static MiniLm.Batch readBatch(Path file) {
        try {
            JsonNode root = JSON.readTree(file.toFile());
            INDArray ids = readMatrix(root.get("input_ids"), file);
            INDArray mask = readMatrix(root.get("attention_mask"), file);
            JsonNode l = root.get("labels");
            long[] labels = new long[l.size()];
            for (int i = 0; i < labels.length; i++) {
                labels[i] = l.get(i).asLong();
            }
            return new MiniLm.Batch(ids, mask, Nd4j.createFromArray(labels));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    private static INDArray readMatrix(JsonNode rows, Path file) {
        if (rows == null || !rows.isArray() || rows.size() == 0) {
            throw new IllegalArgumentException(file + ": missing or empty matrix");
        }
        int b = rows.size();
        int t = rows.get(0).size();
        long[] flat = new long[b * t];
        for (int i = 0; i < b; i++) {
            if (rows.get(i).size() != t) {
                throw new IllegalArgumentException(file + ": ragged matrix at row " + i);
            }
            for (int j = 0; j < t; j++) {
                flat[i * t + j] = rows.get(i).get(j).asLong();
            }
        }
        return Nd4j.createFromArray(flat).reshape('c', b, t).castTo(DataType.INT64);
    }
}
