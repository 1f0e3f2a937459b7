package org.peft4j.core.model.bert;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The Hugging Face {@code BertModel} state-dict keys and shapes for a configuration, and the
 * keys a checkpoint may carry that are not parameters (buffers) and are ignored on load.
 */
public final class BertKeys {
    private BertKeys() {
    }

    /**
     * Non-parameter entries found in real BERT checkpoints: the {@code position_ids} /
     * {@code token_type_ids} buffers that older {@code transformers} versions saved.
     */
    public static final Set<String> IGNORED_BUFFERS = Set.of("embeddings.position_ids", "embeddings.token_type_ids");

    private static final Pattern PARAM = Pattern.compile(
            "embeddings\\.(word_embeddings|position_embeddings|token_type_embeddings)\\.weight"
                    + "|embeddings\\.LayerNorm\\.(weight|bias)"
                    + "|encoder\\.layer\\.\\d+\\.(attention\\.self\\.(query|key|value)|attention\\.output\\.dense"
                    + "|intermediate\\.dense|output\\.dense)\\.(weight|bias)"
                    + "|encoder\\.layer\\.\\d+\\.(attention\\.output|output)\\.LayerNorm\\.(weight|bias)"
                    + "|pooler\\.dense\\.(weight|bias)");

    /** True when {@code key} has the form of a BertModel parameter key (any layer index). */
    public static boolean isParameterKey(String key) {
        return PARAM.matcher(key).matches();
    }

    /** Every BertModel parameter key with its shape, in registration order. */
    public static Map<String, long[]> expectedShapes(BertConfig c, boolean withPooler) {
        long h = c.hiddenSize();
        long i = c.intermediateSize();
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put("embeddings.word_embeddings.weight", new long[]{c.vocabSize(), h});
        m.put("embeddings.position_embeddings.weight", new long[]{c.maxPositionEmbeddings(), h});
        m.put("embeddings.token_type_embeddings.weight", new long[]{c.typeVocabSize(), h});
        m.put("embeddings.LayerNorm.weight", new long[]{h});
        m.put("embeddings.LayerNorm.bias", new long[]{h});
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            String p = "encoder.layer." + l + ".";
            for (String qkv : new String[]{"query", "key", "value"}) {
                m.put(p + "attention.self." + qkv + ".weight", new long[]{h, h});
                m.put(p + "attention.self." + qkv + ".bias", new long[]{h});
            }
            m.put(p + "attention.output.dense.weight", new long[]{h, h});
            m.put(p + "attention.output.dense.bias", new long[]{h});
            m.put(p + "attention.output.LayerNorm.weight", new long[]{h});
            m.put(p + "attention.output.LayerNorm.bias", new long[]{h});
            m.put(p + "intermediate.dense.weight", new long[]{i, h});
            m.put(p + "intermediate.dense.bias", new long[]{i});
            m.put(p + "output.dense.weight", new long[]{h, i});
            m.put(p + "output.dense.bias", new long[]{h});
            m.put(p + "output.LayerNorm.weight", new long[]{h});
            m.put(p + "output.LayerNorm.bias", new long[]{h});
        }
        if (withPooler) {
            m.put("pooler.dense.weight", new long[]{h, h});
            m.put("pooler.dense.bias", new long[]{h});
        }
        return m;
    }
}
