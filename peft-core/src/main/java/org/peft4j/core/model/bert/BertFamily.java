package org.peft4j.core.model.bert;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.model.ModelFamily;
import org.peft4j.core.nn.Module;
import org.peft4j.core.tensor.Rng;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Predicate;

/**
 * The {@code bert} family, registered with the {@link org.peft4j.core.model.ModelFamilies registry}
 * (the bundled MiniLM and BGE checkpoints are BERT too). The model class follows the config's
 * first {@code architectures} entry: {@link BertForSequenceClassification},
 * {@link BertForTokenClassification}, otherwise the encoder {@link BertModel} (a pre-training or
 * other task checkpoint then loads its {@code bert.*} encoder). It does not stream: a
 * {@link org.peft4j.core.model.LayerLoader} sees the whole model once.
 */
public final class BertFamily implements ModelFamily<BertConfig> {
    static final String SEQUENCE_CLASSIFICATION = "BertForSequenceClassification";
    static final String TOKEN_CLASSIFICATION = "BertForTokenClassification";

    public BertFamily() {
    }

    @Override
    public String name() {
        return "bert";
    }

    @Override
    public List<String> modelTypes() {
        return List.of("bert");
    }

    @Override
    public Kind kind() {
        return Kind.ENCODER;
    }

    @Override
    public BertConfig parseConfig(ObjectNode configJson, String source) {
        return BertConfig.fromJson(configJson, source);
    }

    /** The first {@code architectures} entry of a config, {@code BertModel} when there is none. */
    static String architecture(ObjectNode configJson) {
        return configJson.path("architectures").path(0).asText("BertModel");
    }

    /**
     * The class {@code architectures} names, initialised as Hugging Face does from {@code seed}.
     * The encoder gets a pooler when the checkpoint has {@code pooler.dense.weight}; a
     * sequence classifier that would pool with a pooler the checkpoint lacks pools by the mean.
     */
    @Override
    public Module skeleton(BertConfig config, ObjectNode configJson, Predicate<String> checkpointHas, long seed) {
        boolean pooler = checkpointHas.test("pooler.dense.weight");
        switch (architecture(configJson)) {
            case SEQUENCE_CLASSIFICATION: {
                BertConfig c = config;
                if (!pooler && c.classifierPooling() == BertConfig.Pooling.POOLER) {
                    c = c.toBuilder().classifierPooling(BertConfig.Pooling.MEAN).build();
                }
                return new BertForSequenceClassification(c, new Rng(seed));
            }
            case TOKEN_CLASSIFICATION:
                return new BertForTokenClassification(config, new Rng(seed));
            default:
                return new BertModel(config, pooler, new Rng(seed));
        }
    }

    /** {@code bert.}: task checkpoints prefix the encoder's keys with it. */
    @Override
    public List<String> checkpointPrefixes() {
        return List.of("bert.");
    }

    /** The buffers of {@link BertKeys#IGNORED_BUFFERS}, with or without the {@code bert.} prefix. */
    @Override
    public Predicate<String> ignoredKeys(BertConfig config) {
        return BertCheckpoint::isIgnoredBuffer;
    }

    /** The {@code load} of the class {@code architectures} names (strict; eval mode). */
    @Override
    public Module load(Path dir, long seed) throws IOException {
        switch (architecture((ObjectNode) HfFolder.readConfig(dir))) {
            case SEQUENCE_CLASSIFICATION:
                return BertForSequenceClassification.load(dir, new Rng(seed));
            case TOKEN_CLASSIFICATION:
                return BertForTokenClassification.load(dir, new Rng(seed));
            default:
                return BertModel.load(dir, new Rng(seed));
        }
    }

    /** The config with {@code architectures} naming the model's class (the task heads before the encoder). */
    @Override
    public Optional<ObjectNode> configJson(Module model) {
        Map<String, Object> config;
        if (model instanceof BertForSequenceClassification b) {
            config = b.config().toMap(SEQUENCE_CLASSIFICATION);
        } else if (model instanceof BertForTokenClassification b) {
            config = b.config().toMap(TOKEN_CLASSIFICATION);
        } else if (model instanceof BertModel b) {
            config = b.config().toMap("BertModel");
        } else {
            return Optional.empty();
        }
        return Optional.of(JsonFiles.mapper().valueToTree(config));
    }

    @Override
    public String toString() {
        return "BertFamily(bert)";
    }
}
