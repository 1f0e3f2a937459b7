package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.peft4j.core.io.HfFolder;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.gpt2.Gpt2Config;
import org.peft4j.core.model.gpt2.Gpt2LMHeadModel;
import org.peft4j.core.model.llama.LlamaConfig;
import org.peft4j.core.model.llama.LlamaForCausalLM;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

/** {@code peft4j info --model DIR|minilm|bge-small [--adapter DIR]}: family, sizes, parameters, module tree. */
final class InfoCommand implements Command {
    @Override
    public String name() {
        return "info";
    }

    @Override
    public String summary() {
        return "family, sizes, parameter count and module tree of a model";
    }

    @Override
    public String usage() {
        return """
                usage: peft4j info --model DIR|minilm|bge-small [--adapter DIR] [--no-tree]

                Prints the model family, its sizes, the parameter count and the module tree with the
                Hugging Face names of every module and parameter. With --adapter, the adapter is loaded
                first, so the tree shows where it sits and the trainable-parameter line is printed.
                """;
    }

    @Override
    public Set<String> valueOptions() {
        return Set.of("model", "adapter");
    }

    @Override
    public Set<String> flagOptions() {
        return Set.of("no-tree");
    }

    @Override
    public void run(Args a, PrintStream out, PrintStream err) throws Exception {
        a.expectPositionals(0, "no arguments");
        Path adapter = a.getPath("adapter");
        Classification.Opened o = Classification.openModel(a.get("model"), adapter, 0);
        try (Models.Base base = o.base()) {
            out.println("model: " + base.displayName());
            out.println("family: " + family(base));
            out.println("sizes: " + sizes(base));
            out.println("parameters: " + Fmt.count(base.module().numParameters())
                    + (o.model() != null && o.model() != base.module() ? " (" + base.kind.name().toLowerCase(Locale.ROOT) + "), "
                    + Fmt.count(((org.peft4j.core.nn.Module) o.model()).child(o.model().headName()).numParameters())
                    + " (" + o.model().headName() + " head, " + o.model().numLabels() + " labels)" : ""));
            if (base.tokenizer != null) {
                out.println("tokenizer: vocabulary " + Fmt.count(base.tokenizer.vocabSize()));
            } else {
                out.println("tokenizer: none (no tokenizer.json in the folder)");
            }
            if (o.peft() != null) {
                out.println("adapter: " + adapter + " (" + o.peft().activeConfig().peftType() + ", target modules "
                        + o.peft().activeConfig().toMap().get("target_modules") + ")");
                out.println("adapter parameters: " + Fmt.count(o.peft().adapterStateDict(o.peft().activeAdapter()).values()
                        .stream().mapToLong(x -> x.length()).sum()));
            }
            if (!a.flag("no-tree")) {
                out.println("module tree:");
                out.print(o.root().treeString());
            }
        }
    }

    static String family(Models.Base base) throws Exception {
        if (base.kind == Models.Kind.ENCODER) {
            return "bert (encoder" + (base.seqClsCheckpoint ? ", sequence classification head" : "") + ")";
        }
        if (base.decoderClassifier != null) {
            return base.decoderClassifier.modelType() + " (decoder, " + base.decoderClassifier.architecture() + ", "
                    + base.decoderClassifier.numLabels() + " labels, pad_token_id " + base.decoderClassifier.padTokenId() + ")";
        }
        if (base.kind == Models.Kind.SEQ2SEQ) {
            return base.seq2seq.config().modelType() + " (encoder-decoder, T5 family)";
        }
        if (base.decoder instanceof Gpt2LMHeadModel) {
            return "gpt2 (decoder)";
        }
        JsonNode cfg = HfFolder.readConfig(base.dir);
        return cfg.path("model_type").asText() + " (decoder, LLaMA family)";
    }

    static String sizes(Models.Base base) {
        if (base.kind == Models.Kind.ENCODER) {
            BertConfig c = base.encoder.config();
            return String.format(Locale.ROOT, "layers %d, hidden %d, heads %d, intermediate %d, vocab %d, max positions %d, pooler %s",
                    c.numHiddenLayers(), c.hiddenSize(), c.numAttentionHeads(), c.intermediateSize(), c.vocabSize(),
                    c.maxPositionEmbeddings(), base.encoder.hasPooler() ? "yes" : "no");
        }
        if (base.decoderClassifier != null) {
            org.peft4j.core.model.Backbone b = base.decoderClassifier.backbone();
            return String.format(Locale.ROOT, "layers %d, hidden %d, heads %d (key/value heads %d, head dim %d), vocab %d, max positions %d",
                    b.numLayers(), b.hiddenSize(), b.numAttentionHeads(), b.numKeyValueHeads(), b.headDim(), b.vocabSize(),
                    b.maxPositions());
        }
        if (base.kind == Models.Kind.SEQ2SEQ) {
            org.peft4j.core.model.t5.T5Config c = base.seq2seq.config();
            return String.format(Locale.ROOT, "encoder layers %d, decoder layers %d, d_model %d, heads %d (d_kv %d), d_ff %d (%s),"
                            + " vocab %d, relative buckets %d (max distance %d), tied head %s, decoder start %s, eos %s",
                    c.numLayers(), c.numDecoderLayers(), c.dModel(), c.numHeads(), c.dKv(), c.dFf(), c.feedForwardProj(),
                    c.vocabSize(), c.relativeAttentionNumBuckets(), c.relativeAttentionMaxDistance(),
                    c.tieWordEmbeddings() ? "yes (rescaled by d_model^-0.5)" : "no", c.decoderStartTokenId(), c.eosTokenIds());
        }
        if (base.decoder instanceof Gpt2LMHeadModel g) {
            Gpt2Config c = g.config();
            return String.format(Locale.ROOT, "layers %d, hidden %d, heads %d, inner %d, vocab %d, max positions %d, tied head %s",
                    c.nLayer(), c.nEmbd(), c.nHead(), c.nInner(), c.vocabSize(), c.nPositions(), c.tieWordEmbeddings() ? "yes" : "no");
        }
        LlamaConfig c = ((LlamaForCausalLM) base.decoder).config();
        return String.format(Locale.ROOT, "layers %d, hidden %d, heads %d (key/value heads %d, head dim %d), intermediate %d, vocab %d,"
                        + " max positions %d, rope theta %s, tied head %s",
                c.numHiddenLayers(), c.hiddenSize(), c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(),
                c.intermediateSize(), c.vocabSize(), c.maxPositionEmbeddings(), c.ropeTheta(), c.tieWordEmbeddings() ? "yes" : "no");
    }
}
