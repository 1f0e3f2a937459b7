package org.peft4j.core.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * A {@link Tokenizer} backed by Hugging Face's Rust {@code tokenizers} (through DJL), loaded
 * from a {@code tokenizer.json} file or stream. Runs fully offline: DJL's bundled native
 * library is used and its network look-ups are disabled ({@code ai.djl.offline=true}).
 *
 * <p>Padding and truncation settings inside the file (MiniLM's file asks for fixed padding to
 * 128) are switched off; this class truncates and pads itself so that each call decides.
 * Truncation keeps the post-processor's special tokens and drops text tokens from the end,
 * which is what Hugging Face does for a single sequence.
 */
public final class HfTokenizer implements Tokenizer {
    private static final Logger LOG = LoggerFactory.getLogger(HfTokenizer.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    static {
        // DJL would otherwise be allowed to download a native library that does not match; the
        // jar bundles the linux-x86_64 one, so stay offline. Respect an explicit user setting.
        if (System.getProperty("ai.djl.offline") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
    }

    private final HuggingFaceTokenizer tokenizer;
    private final String source;
    private final Map<String, Integer> tokenIds;
    private final int vocabSize;
    private final int cls;
    private final int sep;
    private final int pad;
    private final int unk;
    private final int mask;
    /** Special tokens the post-processor puts before / after a single sequence (BERT: 1 and 1). */
    private final int leadingSpecials;
    private final int trailingSpecials;

    private HfTokenizer(byte[] json, String source) {
        this.source = source;
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (IOException e) {
            throw new IllegalArgumentException("tokenizer file " + source + " is not valid JSON: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject() || !root.has("model")) {
            throw new IllegalArgumentException("tokenizer file " + source + " has no 'model' section (not a tokenizer.json)");
        }
        tokenIds = readVocabulary(root, source);
        int max = -1;
        for (int id : tokenIds.values()) {
            max = Math.max(max, id);
        }
        vocabSize = max + 1;
        String unkToken = root.path("model").path("unk_token").asText("[UNK]");
        unk = firstId(unkToken, "[UNK]", "<unk>");
        cls = firstId("[CLS]", "<s>");
        sep = firstId("[SEP]", "</s>");
        mask = firstId("[MASK]", "<mask>");
        JsonNode padding = root.path("padding");
        pad = padding.hasNonNull("pad_id") ? padding.get("pad_id").asInt() : firstId("[PAD]", "<pad>");

        // The native library aborts the whole JVM (a Rust panic) on some inconsistent files, so
        // those are refused here first.
        checkPostProcessor(root.path("post_processor"), source, 0);

        Map<String, String> options = new HashMap<>();
        options.put("padding", "false");
        options.put("truncation", "false");
        options.put("addSpecialTokens", "true");
        try (InputStream in = new ByteArrayInputStream(json)) {
            tokenizer = HuggingFaceTokenizer.newInstance(in, options);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot load tokenizer " + source, e);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("cannot load tokenizer " + source + ": " + e.getMessage(), e);
        }

        // Find where the text sits inside the post-processed sequence, once, with a probe word.
        long[] withSpecials;
        long[] plain;
        try {
            withSpecials = tokenizer.encode("hello", true, false).getIds();
            plain = tokenizer.encode("hello", false, false).getIds();
        } catch (RuntimeException e) {
            tokenizer.close();
            throw new IllegalArgumentException("tokenizer file " + source + " cannot encode text: " + e.getMessage(), e);
        }
        int lead = indexOf(withSpecials, plain);
        if (lead < 0) {
            throw new IllegalArgumentException("cannot locate the text inside the post-processed sequence of " + source
                    + ": " + Arrays.toString(withSpecials) + " vs " + Arrays.toString(plain));
        }
        leadingSpecials = lead;
        trailingSpecials = withSpecials.length - plain.length - lead;
        LOG.debug("loaded tokenizer {} (vocab {}, cls {}, sep {}, pad {}, unk {}, mask {})",
                source, vocabSize, cls, sep, pad, unk, mask);
    }

    /**
     * Checks a template post-processor (also inside a {@code Sequence}): every
     * special token its templates name must be defined in its {@code special_tokens} with integer
     * ids — the tokenizers library panics (and takes the JVM with it) on the first encode otherwise.
     */
    private static void checkPostProcessor(JsonNode pp, String source, int depth) {
        if (pp == null || !pp.isObject() || depth > 16) {
            return;
        }
        // The library reads post-processors by their shape, not by "type" (serde untagged), so
        // anything with processors or templates is checked, whatever it calls itself.
        for (JsonNode p : pp.path("processors")) {
            checkPostProcessor(p, source, depth + 1);
        }
        if (!pp.has("single") && !pp.has("pair")) {
            return;
        }
        JsonNode specials = pp.path("special_tokens");
        for (String part : new String[]{"single", "pair"}) {
            for (JsonNode piece : pp.path(part)) {
                JsonNode st = piece.path("SpecialToken");
                if (st.isMissingNode()) {
                    continue;
                }
                String id = st.path("id").asText();
                JsonNode def = specials.get(id);
                if (def == null || !def.path("ids").isArray() || def.path("ids").isEmpty()) {
                    throw new IllegalArgumentException("tokenizer file " + source + ": post_processor." + part
                            + " uses special token '" + id + "', which post_processor.special_tokens does not define");
                }
                for (JsonNode i : def.path("ids")) {
                    if (!i.canConvertToInt() || i.asInt() < 0) {
                        throw new IllegalArgumentException("tokenizer file " + source + ": special token '" + id
                                + "' has id " + i + " (a non-negative integer is expected)");
                    }
                }
            }
        }
    }

    /** Loads {@code tokenizer.json} from a file. */
    public static HfTokenizer fromFile(Path path) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(path);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read tokenizer file " + path, e);
        }
        return new HfTokenizer(bytes, path.toString());
    }

    /** Loads a {@code tokenizer.json} from a stream (read fully, not closed); {@code name} is used in messages. */
    public static HfTokenizer fromStream(InputStream in, String name) {
        try {
            return new HfTokenizer(in.readAllBytes(), name);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read tokenizer " + name, e);
        }
    }

    /** Loads a {@code tokenizer.json} from a class-path resource (e.g. {@code /all-minilm-l6-v2-tokenizer.json}). */
    public static HfTokenizer fromResource(String resource) {
        try (InputStream in = HfTokenizer.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalArgumentException("tokenizer resource " + resource + " is not on the class path");
            }
            return new HfTokenizer(in.readAllBytes(), resource);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read tokenizer resource " + resource, e);
        }
    }

    private static Map<String, Integer> readVocabulary(JsonNode root, String source) {
        Map<String, Integer> ids = new HashMap<>();
        JsonNode vocab = root.path("model").path("vocab");
        if (vocab.isObject()) {
            // WordPiece / WordLevel / BPE: {"token": id}
            Iterator<Map.Entry<String, JsonNode>> it = vocab.fields();
            while (it.hasNext()) {
                Map.Entry<String, JsonNode> e = it.next();
                ids.put(e.getKey(), e.getValue().asInt());
            }
        } else if (vocab.isArray()) {
            // Unigram: [[token, score], ...], the id is the position
            for (int i = 0; i < vocab.size(); i++) {
                JsonNode entry = vocab.get(i);
                if (!entry.isArray() || entry.isEmpty() || !entry.get(0).isTextual()) {
                    throw new IllegalArgumentException("tokenizer file " + source + ": model.vocab[" + i
                            + "] must be a [token, score] pair, got " + entry);
                }
                ids.put(entry.get(0).asText(), i);
            }
        } else {
            throw new IllegalArgumentException("tokenizer file " + source + " has no model.vocab");
        }
        for (JsonNode t : root.path("added_tokens")) {
            ids.put(t.path("content").asText(), t.path("id").asInt());
        }
        return ids;
    }

    private int firstId(String... tokens) {
        for (String t : tokens) {
            Integer id = tokenIds.get(t);
            if (id != null) {
                return id;
            }
        }
        return -1;
    }

    private static int indexOf(long[] haystack, long[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    @Override
    public Encoding encode(String text, int maxLength, boolean truncation) {
        if (text == null) {
            throw new IllegalArgumentException("text must not be null");
        }
        return fromDjl(tokenizer.encode(text, true, false), maxLength, truncation);
    }

    private Encoding fromDjl(ai.djl.huggingface.tokenizers.Encoding e, int maxLength, boolean truncation) {
        long[] ids = e.getIds();
        long[] types = e.getTypeIds();
        long[] mask = e.getAttentionMask();
        int n = ids.length;
        int keep = n;
        if (truncation && n > maxLength) {
            int specials = leadingSpecials + trailingSpecials;
            if (maxLength < specials) {
                throw new IllegalArgumentException("maxLength " + maxLength + " is shorter than the "
                        + specials + " special tokens the tokenizer " + source + " adds");
            }
            keep = maxLength;
        }
        int[] outIds = new int[keep];
        int[] outMask = new int[keep];
        int[] outTypes = new int[keep];
        // text tokens kept: the first (keep - specials); the trailing specials are copied from the end
        int head = keep - trailingSpecials;
        for (int i = 0; i < head; i++) {
            outIds[i] = (int) ids[i];
            outMask[i] = (int) mask[i];
            outTypes[i] = (int) types[i];
        }
        for (int i = 0; i < trailingSpecials; i++) {
            int src = n - trailingSpecials + i;
            outIds[head + i] = (int) ids[src];
            outMask[head + i] = (int) mask[src];
            outTypes[head + i] = (int) types[src];
        }
        return new Encoding(outIds, outMask, outTypes);
    }

    @Override
    public BatchEncoding encodeBatch(List<String> texts, int maxLength, boolean truncation, Padding padding) {
        if (texts == null || texts.isEmpty()) {
            throw new IllegalArgumentException("encodeBatch needs at least one text");
        }
        if (maxLength <= 0) {
            throw new IllegalArgumentException("maxLength must be positive, got " + maxLength);
        }
        for (int i = 0; i < texts.size(); i++) {
            if (texts.get(i) == null) {
                throw new IllegalArgumentException("text " + i + " of the batch is null");
            }
        }
        ai.djl.huggingface.tokenizers.Encoding[] raw = tokenizer.batchEncode(texts, true, false);
        List<Encoding> enc = new ArrayList<>(raw.length);
        int longest = 0;
        for (ai.djl.huggingface.tokenizers.Encoding r : raw) {
            Encoding e = fromDjl(r, maxLength, truncation);
            enc.add(e);
            longest = Math.max(longest, e.length());
        }
        int length = padding == Padding.MAX_LENGTH ? maxLength : longest;
        if (longest > length) {
            throw new IllegalArgumentException("a text has " + longest + " tokens, more than maxLength " + maxLength
                    + " (enable truncation)");
        }
        return BatchEncoding.pad(enc, length, pad < 0 ? 0 : pad);
    }

    @Override
    public String decode(int[] ids, boolean skipSpecialTokens) {
        long[] l = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= vocabSize) {
                throw new IllegalArgumentException("token id " + ids[i] + " at position " + i
                        + " is outside the vocabulary [0, " + vocabSize + ")");
            }
            l[i] = ids[i];
        }
        return tokenizer.decode(l, skipSpecialTokens);
    }

    @Override
    public int tokenToId(String token) {
        Integer id = tokenIds.get(token);
        return id == null ? -1 : id;
    }

    @Override
    public int clsId() {
        return cls;
    }

    @Override
    public int sepId() {
        return sep;
    }

    @Override
    public int padId() {
        return pad;
    }

    @Override
    public int unkId() {
        return unk;
    }

    @Override
    public int maskId() {
        return mask;
    }

    @Override
    public int vocabSize() {
        return vocabSize;
    }

    /** Where this tokenizer was loaded from (file path or resource name). */
    public String source() {
        return source;
    }

    @Override
    public void close() {
        tokenizer.close();
    }

    @Override
    public String toString() {
        return "HfTokenizer(" + source + ", vocab " + vocabSize + ")";
    }
}
