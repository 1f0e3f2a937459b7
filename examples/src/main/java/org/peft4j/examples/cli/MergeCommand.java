package org.peft4j.examples.cli;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.model.decoder.DecoderForSequenceClassification;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.model.gpt2.Gpt2LMHeadModel;
import org.peft4j.core.model.llama.LlamaForCausalLM;
import org.peft4j.core.nn.Module;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

/**
 * {@code peft4j merge --model M --adapter A --out DIR}: folds the adapter into the base weights
 * and writes a plain Hugging Face folder ({@code config.json} + {@code model.safetensors}, and the
 * tokenizer) that loads without peft4j's PEFT layer; then reloads it and checks that it computes
 * what the adapter model computed.
 */
final class MergeCommand implements Command {
    /** Largest output difference the reload check accepts (fp32 merge rounding is far below it). */
    static final double CHECK_TOLERANCE = 1e-4;

    @Override
    public String name() {
        return "merge";
    }

    @Override
    public String summary() {
        return "merge an adapter into its base model and write a plain Hugging Face folder";
    }

    @Override
    public String usage() {
        return """
                usage: peft4j merge [--model M] --adapter DIR --out DIR

                Merges the adapter's weights into the base model (W + scale * B A) and writes a plain
                Hugging Face folder (config.json + model.safetensors, plus tokenizer.json when known) that
                loads as an ordinary model — a classifier when the adapter saves a classification head
                (then usable as: peft4j predict --model OUT --text ...). The written folder is reloaded
                and its outputs compared with the adapter model's on a probe sequence.
                  --model M   minilm, bge-small or a folder; defaults to the adapter's base_model_name_or_path
                """;
    }

    @Override
    public Set<String> valueOptions() {
        return Set.of("model", "adapter", "out");
    }

    @Override
    public void run(Args a, PrintStream out, PrintStream err) throws Exception {
        a.expectPositionals(0, "no arguments");
        Path adapter = Path.of(a.require("adapter"));
        Path target = Path.of(a.require("out")).toAbsolutePath().normalize();
        // the export replaces the whole --out folder, so it must be empty or an earlier export
        if (Files.isDirectory(target) && !Files.isRegularFile(target.resolve("config.json"))) {
            try (var entries = Files.list(target)) {
                if (entries.findAny().isPresent()) {
                    throw new CliException("--out " + target + " holds files but no config.json: choose an empty or new"
                            + " folder (the export replaces the whole folder)");
                }
            }
        }
        if (target.equals(adapter.toAbsolutePath().normalize())) {
            throw new CliException("--out must not be the adapter folder");
        }
        Classification.Opened o = Classification.openModel(a.get("model"), adapter, 0);
        try (Models.Base base = o.base()) {
            INDArray probe = probeIds(base);
            INDArray expected;
            try (NoGrad ignored = NoGrad.enter()) {
                expected = output(o.inner(), probe).dup();
            }
            Module plain = o.peft().mergeAndUnload();
            // The whole folder is written aside and swapped in at once: a run killed at any point
            // leaves the previous export (or none), never new weights beside an old config.
            String[] kind = new String[1];
            boolean[] tok = new boolean[1];
            AtomicFiles.replaceDirectory(target, staging -> {
                if (plain instanceof BertForSequenceClassification c) {
                    c.save(staging);
                    kind[0] = "BertForSequenceClassification (" + c.config().numLabels() + " labels: "
                            + c.config().id2label() + ")";
                } else if (plain instanceof BertModel b) {
                    b.save(staging);
                    kind[0] = "BertModel";
                } else if (plain instanceof DecoderLM d) {
                    d.save(staging);
                    kind[0] = d.getClass().getSimpleName();
                } else if (plain instanceof DecoderForSequenceClassification d) {
                    d.save(staging);
                    kind[0] = d.architecture() + " (" + d.numLabels() + " labels: " + d.labels() + ")";
                } else if (plain instanceof org.peft4j.core.model.t5.T5ForConditionalGeneration t5) {
                    t5.save(staging);
                    kind[0] = "T5ForConditionalGeneration";
                } else {
                    throw new CliException("cannot write a " + plain.getClass().getSimpleName() + " as a Hugging Face folder");
                }
                tok[0] = copyTokenizer(base, staging);
            });
            out.printf("merged %s into %s and wrote %s to %s%n", adapter, base.displayName(), kind[0], target);
            out.println("files: " + DemoCommand.listFiles(target) + (tok[0] ? "" : " (no tokenizer known for this model)"));

            // reload the written folder through the ordinary (non-PEFT) path
            Module reloaded = reload(plain, target);
            double diff;
            try (NoGrad ignored = NoGrad.enter()) {
                reloaded.eval();
                diff = output(reloaded, probe).sub(expected).amaxNumber().doubleValue();
            }
            out.printf(Locale.ROOT, "check: the reloaded folder matches the adapter model on a %d-token probe (max |difference| %.2e)%n",
                    probe.size(1), diff);
            if (!(diff <= CHECK_TOLERANCE)) {
                throw new IllegalStateException("merged model differs from the adapter model by " + diff);
            }
        }
    }

    /** A short probe sequence inside the vocabulary: [CLS]-like start, then spread ids. */
    static INDArray probeIds(Models.Base base) {
        int vocab = base.vocabSize();
        long[] ids = new long[8];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (1 + 37L * i * i + 11L * i) % vocab;
        }
        return Nd4j.createFromArray(new long[][]{ids});
    }

    /** Classifier logits, encoder last hidden state, or decoder logits for {@code ids [1, T]}. */
    static INDArray output(Module m, INDArray ids) {
        if (m instanceof BertForSequenceClassification c) {
            return c.forward(ids, null, null).value();
        }
        if (m instanceof BertModel b) {
            return b.forward(ids, null, null).lastHiddenState().value();
        }
        if (m instanceof DecoderLM d) {
            return d.forward(ids, null).value();
        }
        if (m instanceof DecoderForSequenceClassification d) {
            return d.forward(ids, null).value();
        }
        if (m instanceof org.peft4j.core.model.t5.T5ForConditionalGeneration t5) {
            // the decoder on the probe as decoder input, the encoder on the probe
            return t5.forward(ids, null, ids, null).value();
        }
        throw new CliException("cannot run a " + m.getClass().getSimpleName());
    }

    static Module reload(Module plain, Path dir) throws IOException {
        if (plain instanceof BertForSequenceClassification) {
            return BertForSequenceClassification.load(dir, new Rng(0));
        }
        if (plain instanceof BertModel) {
            return BertModel.load(dir);
        }
        if (plain instanceof DecoderForSequenceClassification) {
            return DecoderForSequenceClassification.load(dir);
        }
        if (plain instanceof Gpt2LMHeadModel) {
            return Gpt2LMHeadModel.load(dir);
        }
        if (plain instanceof org.peft4j.core.model.t5.T5ForConditionalGeneration) {
            return org.peft4j.core.model.t5.T5ForConditionalGeneration.load(dir);
        }
        return LlamaForCausalLM.load(dir);
    }

    /** Puts the base model's tokenizer.json next to the merged weights; false when there is none. */
    static boolean copyTokenizer(Models.Base base, Path target) throws IOException {
        if (base.dir == null) {
            String resource = "/" + Models.BUNDLED.get(base.spec) + "-tokenizer.json";
            try (InputStream in = MergeCommand.class.getResourceAsStream(resource)) {
                if (in == null) {
                    return false;
                }
                AtomicFiles.writeBytes(target.resolve("tokenizer.json"), in.readAllBytes());
                return true;
            }
        }
        Path tok = base.dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(tok)) {
            return false;
        }
        AtomicFiles.writeBytes(target.resolve("tokenizer.json"), Files.readAllBytes(tok));
        return true;
    }
}
