package org.peft4j.spark;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.model.ModelZoo;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.model.bert.BertOnnxImport;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tokenizer.HfTokenizer;
import org.peft4j.core.tokenizer.Tokenizer;
import org.peft4j.quant.QuantConfig;
import org.peft4j.quant.Quantizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The {@link ModelSource}s the YAML recipe names: a bundled model or a BERT folder, fp32 or NF4. */
public final class ModelSources {
    private ModelSources() {
    }

    /**
     * A BERT encoder with a new classification head of {@code labels}.
     *
     * @param model   {@code minilm}, {@code bge-small} (bundled, {@link ModelZoo}) or a Hugging Face BERT
     *                folder that every executor can read (with {@code tokenizer.json} unless the data is
     *                pre-tokenized)
     * @param pooling how the head pools the sequence ({@code mean}, {@code cls}, {@code pooler})
     * @param nf4     quantize the encoder's linear layers to 4-bit NF4 before the adapter is added (QLoRA)
     * @param dropout overrides every dropout probability of the encoder and head, or null to keep the config's
     * @param seed    draws the head (identically on every executor) and seeds dropout
     */
    public static ModelSource classifier(String model, List<String> labels, String pooling, boolean nf4, Double dropout,
                                         long seed) {
        if (model == null || model.isBlank()) {
            throw new IllegalArgumentException("model must name a bundled model (minilm, bge-small) or a BERT folder");
        }
        if (labels == null || labels.size() < 2) {
            throw new IllegalArgumentException("a classifier needs at least 2 labels, got " + labels);
        }
        BertConfig.Pooling p;
        try {
            p = BertConfig.Pooling.valueOf(pooling.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("pooling must be mean, cls or pooler, got '" + pooling + "'");
        }
        String zoo = zooName(model);
        if (zoo == null && !Files.isDirectory(Path.of(model))) {
            throw new IllegalArgumentException("model '" + model + "' is neither a bundled model (minilm, bge-small) nor a folder");
        }
        return new Classifier(model, List.copyOf(labels), p, nf4, dropout, seed);
    }

    static String zooName(String model) {
        return switch (model.toLowerCase(Locale.ROOT)) {
            case "minilm", ModelZoo.MINILM_L6 -> ModelZoo.MINILM_L6;
            case "bge-small", ModelZoo.BGE_SMALL -> ModelZoo.BGE_SMALL;
            default -> null;
        };
    }

    private record Classifier(String model, List<String> labels, BertConfig.Pooling pooling, boolean nf4, Double dropout,
                              long seed) implements ModelSource {
        @Override
        public String key() {
            return "classifier:" + model + ":" + labels + ":" + pooling + ":nf4=" + nf4 + ":dropout=" + dropout + ":seed=" + seed;
        }

        @Override
        public Loaded load() {
            Rng encoderRng = new Rng(seed);
            Rng headRng = new Rng(seed + 1);
            String zoo = zooName(model);
            BertConfig config;
            Map<String, INDArray> weights;
            Tokenizer tok;
            String source;
            if (zoo != null) {
                BertOnnxImport.BertWeights w = ModelZoo.weights(zoo);
                config = w.config();
                weights = w.weights();
                tok = ModelZoo.tokenizer(zoo);
                source = zoo;
            } else {
                Path dir = Path.of(model);
                BertModel m = BertModel.load(dir, encoderRng);
                config = m.config();
                weights = new LinkedHashMap<>();
                for (Map.Entry<String, Parameter> e : m.namedParameters().entrySet()) {
                    weights.put(e.getKey(), e.getValue().value());
                }
                Path tj = dir.resolve("tokenizer.json");
                tok = Files.isRegularFile(tj) ? HfTokenizer.fromFile(tj) : null;
                source = dir.toString();
            }
            if (dropout != null) {
                config = config.toBuilder().hiddenDropoutProb(dropout).attentionProbsDropoutProb(dropout)
                        .classifierDropout(dropout).build();
            }
            BertModel encoder = BertModel.fromWeightsCopy(config, weights, source, encoderRng);
            BertForSequenceClassification cls = BertForSequenceClassification.withNewHead(encoder, labels, pooling, headRng);
            if (nf4) {
                // the head stays fp32 (QuantConfig skips "classifier"); the adapter is added afterwards
                Quantizer.quantize(cls, QuantConfig.nf4());
            }
            return new Loaded(cls, tok, encoderRng, headRng);
        }
    }
}
