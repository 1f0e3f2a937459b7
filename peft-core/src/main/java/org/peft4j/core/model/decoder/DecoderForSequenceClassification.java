package org.peft4j.core.model.decoder;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.model.Backbone;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.model.BackboneOutput;
import org.peft4j.core.model.HeadOutput;
import org.peft4j.core.model.InputPreparation;
import org.peft4j.core.model.ModelFamilies;
import org.peft4j.core.model.SequenceClassifier;
import org.peft4j.core.model.WeightSource;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * transformers' decoder sequence classifiers, {@code GPT2ForSequenceClassification} and
 * {@code LlamaForSequenceClassification} (also {@code MistralForSequenceClassification},
 * {@code Qwen2ForSequenceClassification}): the family's decoder stack under its Hugging Face name
 * ({@code transformer} for GPT-2, {@code model} for the LLaMA family) and {@code score}, a
 * bias-free {@code Linear(hidden, numLabels)}; state-dict keys {@code transformer.…} /
 * {@code model.…} and {@code score.weight} (no {@code lm_head}). A new head is normal(0,
 * {@code initializer_range}), as transformers' {@code _init_weights}.
 *
 * <p>The logits are the {@code score} of the last non-padding token, found as transformers
 * finds it: with {@code pad_token_id} set, the rightmost position whose id is not the pad id
 * ({@code argmax(arange(T) · (ids != pad))}: left and right padding alike; 0 for a row of pads);
 * without one, the last position, and a batch of more than one row is refused. A prompt method
 * that puts {@code n} virtual tokens in front (prompt tuning, P-tuning) shifts that position by
 * {@code n}; a key/value prefix (prefix tuning) does not shift it. PEFT hands transformers only
 * {@code inputs_embeds} for prompt tuning, and transformers then takes the last position: the
 * same token for unpadded or left-padded rows; for a right-padded row peft4j still takes the last
 * real token. {@link #forward(BackboneInputs)} (no ids) takes the last position, as transformers
 * does for {@code inputs_embeds}.
 *
 * <p>Made from a causal LM with {@link #withNewHead} (transformers' {@code from_pretrained} of a
 * causal-LM checkpoint into the classifier drops {@code lm_head} and draws {@code score}), or
 * loaded from a folder whose {@code architectures} names the classifier through the family
 * registry ({@link ModelFamilies}, strict: every key used, {@code score.weight [numLabels, hidden]}
 * required); {@link #save} writes such a folder.
 */
public final class DecoderForSequenceClassification extends Module implements SequenceClassifier {
    /** The most classes a config may name (a guard against a corrupt {@code num_labels}). */
    static final int MAX_LABELS = 1 << 20;

    /** The head's child name and key prefix ({@code score.weight}). */
    public static final String SCORE = "score";

    private final String architecture;
    private final String backboneName;
    private final ObjectNode baseConfig;
    private final List<String> labels;
    private final Integer padTokenId;
    private InputPreparation inputPreparation;

    private DecoderForSequenceClassification(DecoderLM lm, List<String> labels, Integer padTokenId, INDArray scoreWeight) {
        Backbone b = lm.backbone();
        String name = null;
        for (Map.Entry<String, Module> e : lm.children().entrySet()) {
            if (e.getValue() == b) {
                name = e.getKey();
            }
        }
        if (name == null) {
            throw new IllegalArgumentException(lm.getClass().getSimpleName() + "'s backbone is not one of its children");
        }
        if (labels == null || labels.isEmpty()) {
            throw new IllegalArgumentException("a sequence classifier needs at least one label");
        }
        if (padTokenId != null && (padTokenId < 0 || padTokenId >= b.vocabSize())) {
            throw new IllegalArgumentException("pad_token_id " + padTokenId + " is outside the vocabulary [0, " + b.vocabSize() + ")");
        }
        long[] want = {labels.size(), b.hiddenSize()};
        if (!Arrays.equals(scoreWeight.shape(), want)) {
            throw new IllegalArgumentException("score.weight must be " + Arrays.toString(want) + " [numLabels, hidden], got "
                    + Arrays.toString(scoreWeight.shape()));
        }
        this.backboneName = name;
        this.baseConfig = lm.configJson();
        this.architecture = architectureFor(baseConfig.path("model_type").asText(""));
        this.labels = List.copyOf(labels);
        this.padTokenId = padTokenId;
        registerModule(name, (Module) b);
        registerModule(SCORE, new Linear(scoreWeight, null, false));
        if (!lm.isTraining()) {
            eval();
        }
    }

    /** transformers' class for a decoder {@code model_type}. */
    static String architectureFor(String modelType) {
        return switch (modelType) {
            case "gpt2" -> "GPT2ForSequenceClassification";
            case "mistral" -> "MistralForSequenceClassification";
            case "qwen2" -> "Qwen2ForSequenceClassification";
            case "llama" -> "LlamaForSequenceClassification";
            default -> throw new IllegalArgumentException("no sequence-classification class for model_type '" + modelType + "'");
        };
    }

    /** Whether a {@code config.json} names a decoder sequence classifier (its first {@code architectures} entry). */
    public static boolean isSequenceClassification(JsonNode configJson) {
        return configJson.path("architectures").path(0).asText("").endsWith("ForSequenceClassification");
    }

    /**
     * A new head on {@code lm}'s decoder stack (which it shares; the LM head is not used):
     * {@code score} drawn normal(0, {@code initializer_range}) from {@code rng}.
     *
     * @param padTokenId the id that marks padding (transformers' {@code config.pad_token_id}), or
     *                   null (then only one row per batch)
     */
    public static DecoderForSequenceClassification withNewHead(DecoderLM lm, List<String> labels, Integer padTokenId, Rng rng) {
        double std = lm.configJson().path("initializer_range").asDouble(0.02);
        int hidden = lm.backbone().hiddenSize();
        INDArray w = WeightSource.random(rng).get(SCORE + ".weight", new long[]{labels.size(), hidden},
                WeightSource.Init.NORMAL, std);
        return new DecoderForSequenceClassification(lm, labels, padTokenId, w);
    }

    /**
     * The classifier a checkpoint holds: {@code lm} built from its decoder keys, {@code score.weight}
     * from {@code weights} (missing or mis-shaped: recorded there and reported when it finishes);
     * labels and {@code pad_token_id} from {@code configJson}.
     */
    static DecoderForSequenceClassification fromCheckpoint(DecoderLM lm, JsonNode configJson, WeightSource weights) {
        List<String> labels = labelsOf(configJson);
        INDArray w = weights.get(SCORE + ".weight", new long[]{labels.size(), lm.backbone().hiddenSize()},
                WeightSource.Init.NORMAL, configJson.path("initializer_range").asDouble(0.02));
        return new DecoderForSequenceClassification(lm, labels, padTokenIdOf(configJson), w);
    }

    /** {@code id2label} in id order, else {@code LABEL_0 … LABEL_{num_labels-1}} (transformers' default: 2 labels). */
    static List<String> labelsOf(JsonNode configJson) {
        JsonNode m = configJson.path("id2label");
        List<String> out = new ArrayList<>();
        if (m.isObject() && m.size() > 0) {
            TreeMap<Integer, String> byId = new TreeMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = m.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                try {
                    byId.put(Integer.parseInt(e.getKey()), e.getValue().asText());
                } catch (NumberFormatException ex) {
                    throw new IllegalArgumentException("config id2label key '" + e.getKey() + "' is not an integer");
                }
            }
            int i = 0;
            for (Map.Entry<Integer, String> e : byId.entrySet()) {
                if (e.getKey() != i++) {
                    throw new IllegalArgumentException("config id2label ids must be 0.." + (byId.size() - 1) + ", got " + byId.keySet());
                }
                out.add(e.getValue());
            }
            return out;
        }
        JsonNode nl = configJson.path("num_labels");
        if (!nl.isMissingNode() && !nl.isNull() && (!nl.canConvertToInt() || nl.asInt() < 1 || nl.asInt() > MAX_LABELS)) {
            throw new IllegalArgumentException("config num_labels must be an integer in [1, " + MAX_LABELS + "], got " + nl);
        }
        int n = nl.asInt(2);
        for (int i = 0; i < n; i++) {
            out.add("LABEL_" + i);
        }
        return out;
    }

    static Integer padTokenIdOf(JsonNode configJson) {
        JsonNode p = configJson.get("pad_token_id");
        if (p == null || p.isNull()) {
            return null;
        }
        if (!p.canConvertToInt() || !p.isIntegralNumber()) {
            throw new IllegalArgumentException("config pad_token_id must be an integer, got " + p);
        }
        return p.asInt();
    }

    /** Loads a {@code …ForSequenceClassification} folder through its family (strict), in eval mode; dropout seeded with 0. */
    public static DecoderForSequenceClassification load(Path dir) throws IOException {
        return load(dir, 0L);
    }

    public static DecoderForSequenceClassification load(Path dir, long seed) throws IOException {
        Module m = ModelFamilies.forFolder(dir).load(dir, seed);
        if (!(m instanceof DecoderForSequenceClassification c)) {
            throw new IllegalArgumentException(dir.resolve(HfFolder.CONFIG_FILE) + " describes a "
                    + m.getClass().getSimpleName() + ", not a decoder sequence classifier (architectures: "
                    + "GPT2ForSequenceClassification, LlamaForSequenceClassification, …)");
        }
        return c;
    }

    /** Writes {@code config.json} ({@code architectures}, {@code id2label}, {@code label2id}, {@code pad_token_id}) and the weights. */
    public void save(Path dir) throws IOException {
        HfFolder.writeWeights(dir, stateDict(), HfFolder.DEFAULT_MAX_SHARD_BYTES);
        HfFolder.writeConfig(dir, configJson());
    }

    /** The {@code config.json} content of this classifier: the decoder's config with the classification keys. */
    public ObjectNode configJson() {
        ObjectNode n = baseConfig.deepCopy();
        n.putArray("architectures").add(architecture);
        ObjectNode id2label = n.putObject("id2label");
        ObjectNode label2id = n.putObject("label2id");
        for (int i = 0; i < labels.size(); i++) {
            id2label.put(Integer.toString(i), labels.get(i));
            label2id.put(labels.get(i), i);
        }
        n.remove("num_labels");
        if (padTokenId == null) {
            n.putNull("pad_token_id");
        } else {
            n.put("pad_token_id", padTokenId);
        }
        return n;
    }

    /** transformers' class name, e.g. {@code GPT2ForSequenceClassification}. */
    public String architecture() {
        return architecture;
    }

    /** {@code model_type} of the decoder. */
    public String modelType() {
        return baseConfig.path("model_type").asText();
    }

    public Integer padTokenId() {
        return padTokenId;
    }

    @Override
    public List<String> labels() {
        return labels;
    }

    @Override
    public String headName() {
        return SCORE;
    }

    @Override
    public Backbone backbone() {
        return child(backboneName, Backbone.class);
    }

    @Override
    public void setInputPreparation(InputPreparation preparation) {
        this.inputPreparation = preparation;
    }

    @Override
    public InputPreparation inputPreparation() {
        return inputPreparation;
    }

    /**
     * transformers' pooled position of each row: the rightmost index whose id is not
     * {@code padTokenId} (0 for a row of pads), or {@code T − 1} without a pad id (one row only).
     */
    public static int[] lastTokenIndices(INDArray inputIds, Integer padTokenId) {
        if (inputIds == null || inputIds.rank() != 2 || inputIds.size(0) == 0 || inputIds.size(1) == 0) {
            throw new IllegalArgumentException("input ids must be a non-empty [batch, seq] array, found "
                    + (inputIds == null ? "null" : Arrays.toString(inputIds.shape())));
        }
        int b = (int) inputIds.size(0);
        int t = (int) inputIds.size(1);
        int[] out = new int[b];
        if (padTokenId == null) {
            if (b != 1) {
                throw new IllegalArgumentException("a batch of " + b + " rows needs pad_token_id in the classifier's config"
                        + " to find each row's last token (transformers: cannot handle batch sizes > 1 if no padding token"
                        + " is defined)");
            }
            out[0] = t - 1;
            return out;
        }
        long[][] ids = inputIds.castTo(DataType.INT64).toLongMatrix();
        for (int i = 0; i < b; i++) {
            for (int j = t - 1; j >= 0; j--) {
                if (ids[i][j] != padTokenId) {
                    out[i] = j;
                    break;
                }
            }
        }
        return out;
    }

    /** Logits {@code [B, numLabels]} at each row's last real token (see the class comment). */
    public Tensor forward(INDArray inputIds, INDArray attentionMask) {
        int[] last = lastTokenIndices(inputIds, padTokenId);
        Backbone b = backbone();
        INDArray mask = DecoderInputs.check(inputIds, attentionMask, 0, b.vocabSize(), Integer.MAX_VALUE, "");
        return run(BackboneInputs.of(b.embed(inputIds), mask), last).logits();
    }

    @Override
    public Tensor classify(INDArray inputIds, INDArray attentionMask, INDArray tokenTypeIds) {
        return forward(inputIds, attentionMask);
    }

    /** Logits {@code [B, numLabels]} at the last position (transformers' rule for {@code inputs_embeds}). */
    @Override
    public HeadOutput forward(BackboneInputs inputs) {
        int[] last = new int[(int) inputs.batchSize()];
        Arrays.fill(last, (int) inputs.seqLength() - 1);
        return run(inputs, last);
    }

    /** {@code last[b]} indexes the caller's T tokens; virtual tokens in front shift it. */
    private HeadOutput run(BackboneInputs userInputs, int[] last) {
        BackboneInputs in = inputPreparation == null ? userInputs : inputPreparation.prepare(backbone(), userInputs);
        BackboneOutput o = backbone().forward(in);
        Tensor h = o.lastHiddenState();                               // [B, S, hidden], S = virtual + T
        long bsz = h.size(0);
        long s = h.size(1);
        long shift = s - userInputs.seqLength();
        INDArray rows = Nd4j.create(DataType.INT64, bsz);
        for (int i = 0; i < bsz; i++) {
            rows.putScalar(i, i * s + shift + last[i]);
        }
        Tensor pooled = Ops.indexSelect(Ops.reshape(h, bsz * s, h.size(2)), 0, rows);   // [B, hidden]
        return new HeadOutput(child(SCORE, UnaryModule.class).forward(pooled), o);
    }

    @Override
    protected String describe() {
        return architecture + "(labels=" + labels.size() + ", pad_token_id=" + padTokenId + ")";
    }
}
