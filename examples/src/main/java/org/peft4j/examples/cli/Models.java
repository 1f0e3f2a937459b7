package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.model.ModelFamilies;
import org.peft4j.core.model.ModelFamily;
import org.peft4j.core.model.ModelZoo;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.model.decoder.CausalLMs;
import org.peft4j.core.model.decoder.DecoderForSequenceClassification;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.model.t5.T5ForConditionalGeneration;
import org.peft4j.core.nn.Module;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tokenizer.HfTokenizer;
import org.peft4j.core.tokenizer.Tokenizer;
import org.peft4j.quant.QuantizedModels;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Turns a {@code --model} argument into a loaded model: a bundled name ({@code minilm},
 * {@code bge-small}) or a Hugging Face folder whose {@code config.json} says {@code model_type}
 * {@code bert} (encoder) or {@code gpt2}/{@code llama}/{@code mistral}/{@code qwen2} (decoder), as
 * the model-family registry ({@link ModelFamilies}) says.
 * A folder written by {@code peft4j quantize} (its config has a {@code quantization_config}) loads
 * with its layers still quantized, so LoRA on it is QLoRA.
 */
final class Models {
    /** all-MiniLM-L6-v2's Hub id: written to adapter configs so Python's PEFT finds the same base model. */
    static final String MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2";
    static final String BGE_HUB_ID = "BAAI/bge-small-en-v1.5";

    /** Short names accepted on the command line, and the bundled checkpoint each one means. */
    static final Map<String, String> BUNDLED;

    static {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("minilm", ModelZoo.MINILM_L6);
        m.put("bge-small", ModelZoo.BGE_SMALL);
        m.put(ModelZoo.MINILM_L6, ModelZoo.MINILM_L6);
        m.put(ModelZoo.BGE_SMALL, ModelZoo.BGE_SMALL);
        // the Hugging Face Hub ids, which adapter configs record as base_model_name_or_path
        m.put(MINILM_HUB_ID, ModelZoo.MINILM_L6);
        m.put(BGE_HUB_ID, ModelZoo.BGE_SMALL);
        BUNDLED = java.util.Collections.unmodifiableMap(m);
    }

    /** The decoder {@code model_type}s of the registry (gpt2, llama, mistral, qwen2). */
    static final List<String> DECODER_TYPES = ModelFamilies.modelTypes(ModelFamily.Kind.DECODER);

    enum Kind {
        ENCODER, DECODER, SEQ2SEQ;

        /** How messages name it. */
        String describe() {
            return switch (this) {
                case ENCODER -> "an encoder (BERT-family) model";
                case DECODER -> "a decoder (GPT-2 / LLaMA-family) model";
                case SEQ2SEQ -> "an encoder-decoder (T5-family) model";
            };
        }
    }

    private Models() {
    }

    /** A loaded model with what the commands need to know about it. Close it to free the tokenizer. */
    static final class Base implements AutoCloseable {
        final String spec;
        final Kind kind;
        /** The folder, or null for a bundled model. */
        final Path dir;
        final BertModel encoder;
        /** The causal LM, or null for a decoder classifier folder ({@link #decoderClassifier}). */
        final DecoderLM decoder;
        /** A decoder folder holding a {@code …ForSequenceClassification} checkpoint, or null. */
        final DecoderForSequenceClassification decoderClassifier;
        /** The encoder-decoder model (T5), or null. */
        final T5ForConditionalGeneration seq2seq;
        /** The tokenizer, or null when the folder has no tokenizer.json. */
        final Tokenizer tokenizer;
        /** True when the folder holds a sequence-classification checkpoint (encoder + classifier). */
        final boolean seqClsCheckpoint;

        Base(String spec, Kind kind, Path dir, BertModel encoder, DecoderLM decoder, Tokenizer tokenizer, boolean seqCls) {
            this(spec, kind, dir, encoder, decoder, null, null, tokenizer, seqCls);
        }

        Base(String spec, Kind kind, Path dir, BertModel encoder, DecoderLM decoder, DecoderForSequenceClassification classifier,
             Tokenizer tokenizer, boolean seqCls) {
            this(spec, kind, dir, encoder, decoder, classifier, null, tokenizer, seqCls);
        }

        Base(String spec, Kind kind, Path dir, BertModel encoder, DecoderLM decoder, DecoderForSequenceClassification classifier,
             T5ForConditionalGeneration seq2seq, Tokenizer tokenizer, boolean seqCls) {
            this.spec = spec;
            this.seq2seq = seq2seq;
            this.kind = kind;
            this.dir = dir;
            this.encoder = encoder;
            this.decoder = decoder;
            this.decoderClassifier = classifier;
            this.tokenizer = tokenizer;
            this.seqClsCheckpoint = seqCls;
        }

        Module module() {
            return switch (kind) {
                case ENCODER -> encoder;
                case DECODER -> decoder != null ? decoder : decoderClassifier;
                case SEQ2SEQ -> seq2seq;
            };
        }

        /** The longest sequence the model takes (its position table; T5: n_positions when set). */
        int maxPositions() {
            return switch (kind) {
                case ENCODER -> encoder.config().maxPositionEmbeddings();
                case DECODER -> decoder != null ? decoder.backbone().maxPositions() : decoderClassifier.backbone().maxPositions();
                case SEQ2SEQ -> seq2seq.maxPositions();
            };
        }

        /** The vocabulary size of the model. */
        int vocabSize() {
            return switch (kind) {
                case ENCODER -> encoder.config().vocabSize();
                case DECODER -> decoder != null ? decoder.vocabSize() : decoderClassifier.backbone().vocabSize();
                case SEQ2SEQ -> seq2seq.config().vocabSize();
            };
        }

        /** The bundled name or the folder, for messages. */
        String displayName() {
            return dir == null ? BUNDLED.get(spec) : dir.toString();
        }

        Tokenizer requireTokenizer(String why) {
            if (tokenizer == null) {
                throw new CliException(why + " needs a tokenizer, but " + dir + " has no tokenizer.json");
            }
            return tokenizer;
        }

        @Override
        public void close() {
            if (tokenizer != null) {
                tokenizer.close();
            }
        }
    }

    /**
     * What an adapter config records as its base model: the Hub id of a bundled model (so Python's
     * PEFT can load the adapter onto the same weights), otherwise the absolute folder.
     */
    static String baseModelId(String spec) {
        if (isBundled(spec)) {
            return BUNDLED.get(spec).equals(ModelZoo.MINILM_L6) ? MINILM_HUB_ID : BGE_HUB_ID;
        }
        return Path.of(spec).toAbsolutePath().normalize().toString();
    }

    static boolean isBundled(String spec) {
        return BUNDLED.containsKey(spec);
    }

    /** The folder a spec names, checked to hold a {@code config.json}. */
    static Path folder(String spec) {
        Path dir = Path.of(spec);
        if (!Files.isDirectory(dir)) {
            throw new CliException("model '" + spec + "' is neither a bundled model (minilm, bge-small) nor a folder");
        }
        if (!Files.isRegularFile(dir.resolve(HfFolder.CONFIG_FILE))) {
            throw new CliException("model folder " + dir + " has no " + HfFolder.CONFIG_FILE);
        }
        return dir;
    }

    /** The {@code model_type} of a folder's config ("bert" for bundled models). */
    static String modelType(String spec) throws IOException {
        if (isBundled(spec)) {
            return "bert";
        }
        JsonNode cfg = HfFolder.readConfig(folder(spec));
        return cfg.path("model_type").asText("").toLowerCase(Locale.ROOT);
    }

    /** Whether a spec is an encoder or a decoder, from its family in the registry ({@link ModelFamilies}). */
    static Kind kind(String spec) throws IOException {
        if (isBundled(spec)) {
            return Kind.ENCODER;
        }
        Path file = folder(spec).resolve(HfFolder.CONFIG_FILE);
        ModelFamily<?> family;
        try {
            family = ModelFamilies.forConfig(HfFolder.readConfig(folder(spec)), file.toString());
        } catch (IllegalArgumentException e) {
            throw new CliException(e.getMessage());
        }
        switch (family.kind()) {
            case ENCODER:
                return Kind.ENCODER;
            case DECODER:
                return Kind.DECODER;
            case ENCODER_DECODER:
                return Kind.SEQ2SEQ;
            default:
                throw new CliException(file + ": model_type '" + modelType(spec) + "' (" + family.name()
                        + ") is neither an encoder nor a decoder; the commands take "
                        + String.join(", ", ModelFamilies.modelTypes(ModelFamily.Kind.ENCODER)) + ", "
                        + String.join(", ", DECODER_TYPES));
        }
    }

    /** Loads the base model of a spec; dropout masks (used only in training) are seeded with {@code seed}. */
    static Base load(String spec, long seed) throws IOException {
        if (spec == null || spec.isBlank()) {
            throw new CliException("missing required option --model (minilm, bge-small or a model folder)");
        }
        if (isBundled(spec)) {
            ModelZoo.Pretrained p = ModelZoo.load(BUNDLED.get(spec), new Rng(seed));
            return new Base(spec, Kind.ENCODER, null, p.model(), null, p.tokenizer(), false);
        }
        Path dir = folder(spec);
        Kind kind = kind(spec);
        Path tokFile = dir.resolve("tokenizer.json");
        Tokenizer tok = null;
        try {
            tok = Files.isRegularFile(tokFile) ? HfTokenizer.fromFile(tokFile) : null;
            if (QuantizedModels.isQuantizedFolder(dir)) {
                Module m = QuantizedModels.load(dir);
                if (m instanceof BertModel enc) {
                    return new Base(spec, kind, dir, enc, null, tok, false);
                }
                if (m instanceof BertForSequenceClassification sc) {
                    return new Base(spec, kind, dir, sc.bert(), null, tok, true);
                }
                if (m instanceof DecoderLM dec) {
                    return new Base(spec, kind, dir, null, dec, tok, false);
                }
                if (m instanceof DecoderForSequenceClassification dc) {
                    return new Base(spec, kind, dir, null, null, dc, tok, true);
                }
                throw new CliException(dir + " holds a quantized " + m.getClass().getSimpleName()
                        + ", which the commands do not take (a BERT encoder or classifier, gpt2, llama, mistral, qwen2)");
            }
            if (kind == Kind.ENCODER) {
                BertModel enc = BertModel.load(dir, new Rng(seed));
                return new Base(spec, kind, dir, enc, null, tok, isSeqClsFolder(dir));
            }
            if (kind == Kind.SEQ2SEQ) {
                if (QuantizedModels.isQuantizedFolder(dir)) {
                    throw new CliException(dir + " is a quantized encoder-decoder folder, which is not supported");
                }
                T5ForConditionalGeneration t5 = T5ForConditionalGeneration.load(dir, seed);
                return new Base(spec, kind, dir, null, null, null, t5, tok, false);
            }
            if (DecoderForSequenceClassification.isSequenceClassification(HfFolder.readConfig(dir))) {
                return new Base(spec, kind, dir, null, null, DecoderForSequenceClassification.load(dir, seed), tok, true);
            }
            DecoderLM dec = CausalLMs.load(dir, seed);
            return new Base(spec, kind, dir, null, dec, tok, false);
        } catch (RuntimeException | IOException e) {
            if (tok != null) {
                tok.close();
            }
            throw e;
        }
    }

    /** True when a folder's config names {@code BertForSequenceClassification}. */
    static boolean isSeqClsFolder(Path dir) throws IOException {
        for (JsonNode a : HfFolder.readConfig(dir).path("architectures")) {
            if (a.asText().equals("BertForSequenceClassification")) {
                return true;
            }
        }
        return false;
    }

    /** The pooling a new classification head on this encoder uses: the pooler when it has one, else the mean. */
    static BertConfig.Pooling defaultPooling(BertModel encoder) {
        return encoder.hasPooler() ? BertConfig.Pooling.POOLER : BertConfig.Pooling.MEAN;
    }

    /** A full sequence-classification checkpoint folder (encoder + trained classifier). */
    static BertForSequenceClassification loadSeqCls(Path dir, long seed) {
        if (QuantizedModels.isQuantizedFolder(dir)) {
            try {
                return (BertForSequenceClassification) QuantizedModels.load(dir);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }
        return BertForSequenceClassification.load(dir, new Rng(seed));
    }

    static Base requireEncoder(Base base, String command) {
        if (base.kind != Kind.ENCODER) {
            throw new CliException(command + " needs " + Kind.ENCODER.describe() + "; " + base.displayName() + " is "
                    + base.kind.describe());
        }
        return base;
    }

    static Base requireDecoder(Base base, String command) {
        if (base.kind != Kind.DECODER) {
            throw new CliException(command + " needs " + Kind.DECODER.describe() + "; " + base.displayName() + " is "
                    + base.kind.describe());
        }
        return base;
    }

    static Base requireSeq2Seq(Base base, String command) {
        if (base.kind != Kind.SEQ2SEQ) {
            throw new CliException(command + " needs " + Kind.SEQ2SEQ.describe() + "; " + base.displayName() + " is "
                    + base.kind.describe());
        }
        return base;
    }

    /** A decoder with its language-modelling head (not a {@code …ForSequenceClassification} folder). */
    static Base requireCausalLm(Base base, String command) {
        requireDecoder(base, command);
        if (base.decoder == null) {
            throw new CliException(command + " needs a causal LM; " + base.displayName() + " holds a "
                    + base.decoderClassifier.architecture() + " (no language-modelling head)");
        }
        return base;
    }
}
