package org.peft4j.examples.cli;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.model.decoder.DecoderForSequenceClassification;
import org.peft4j.core.tensor.NoGrad;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Set;

/**
 * {@code peft4j logits --model DIR --ids 1,2,3 [--out FILE.json] [--adapter DIR]}: the last
 * position's logits {@code [1, vocab]} of a decoder, or the whole last hidden state
 * {@code [1, T, hidden]} of an encoder, as {@code {"shape", "values"}} JSON.
 */
final class LogitsCommand implements Command {
    @Override
    public String name() {
        return "logits";
    }

    @Override
    public String summary() {
        return "raw model outputs for token ids as JSON (debugging, cross-checking)";
    }

    @Override
    public String usage() {
        return """
                usage: peft4j logits --model DIR|minilm|bge-small --ids 1,2,3 [--decoder-ids 0,5] [--out FILE.json] [--adapter DIR]

                Runs the model on one sequence of token ids (no padding, token types 0) and writes
                {"shape": [...], "values": [row-major floats]}:
                  decoders (GPT-2, LLaMA family): the logits of the last position, shape [1, vocab];
                                                  a sequence classifier (a ...ForSequenceClassification folder,
                                                  or an adapter saving the score head): [1, labels];
                  encoders (BERT family):         the whole last hidden state, shape [1, T, hidden]
                                                  ([1, n + T, hidden] with n virtual tokens of a prompt adapter);
                  encoder-decoders (T5 family):   --ids is the encoder input, --decoder-ids the decoder input
                                                  (default: the config's decoder_start_token_id); the logits
                                                  of every decoder position, shape [1, T_dec, vocab].
                  --adapter DIR   run the base model with a saved adapter folder
                  --out FILE      write the JSON to FILE instead of stdout
                """;
    }

    @Override
    public Set<String> valueOptions() {
        return Set.of("model", "ids", "decoder-ids", "out", "adapter");
    }

    @Override
    public void run(Args a, PrintStream out, PrintStream err) throws Exception {
        a.expectPositionals(0, "no arguments");
        long[] ids = parseIds(a.require("ids"), "ids");
        Path adapter = a.getPath("adapter");
        Classification.Opened o = Classification.openModel(a.get("model"), adapter, 0);
        try (Models.Base base = o.base(); NoGrad ignored = NoGrad.enter()) {
            INDArray input = Nd4j.createFromArray(new long[][]{ids});
            int vocab = base.vocabSize();
            if (a.has("decoder-ids") && base.kind != Models.Kind.SEQ2SEQ) {
                throw new CliException("--decoder-ids is for encoder-decoder (T5-family) models; " + base.displayName()
                        + " is " + base.kind.describe());
            }
            for (long id : ids) {
                if (id >= vocab) {
                    throw new CliException("--ids: token id " + id + " is outside the vocabulary [0, " + vocab + ")");
                }
            }
            INDArray result;
            if (base.kind == Models.Kind.DECODER && o.model() instanceof DecoderForSequenceClassification c) {
                result = c.forward(input, null).value();                                    // [1, numLabels]
            } else if (base.kind == Models.Kind.SEQ2SEQ) {
                long[] dec = a.has("decoder-ids") ? parseIds(a.get("decoder-ids"), "decoder-ids")
                        : new long[]{base.seq2seq.decoderStartTokenId()};
                for (long id : dec) {
                    if (id >= vocab) {
                        throw new CliException("--decoder-ids: token id " + id + " is outside the vocabulary [0, " + vocab + ")");
                    }
                }
                result = base.seq2seq.forward(input, null, Nd4j.createFromArray(new long[][]{dec}), null).value();
            } else if (base.kind == Models.Kind.DECODER) {
                INDArray logits = base.decoder.forward(input, null).value();            // [1, T, V]
                result = logits.get(NDArrayIndex.all(), NDArrayIndex.point(ids.length - 1), NDArrayIndex.all())
                        .reshape(1, logits.size(2));                                      // [1, V]
            } else if (o.peft() != null && o.peft().method().preparesInputs()) {
                // the encoder is not a head: a prompt adapter's virtual tokens / prefix are added here
                BackboneInputs in = o.peft().prepareInputs(base.encoder, BackboneInputs.of(base.encoder.embed(input), null));
                result = base.encoder.forward(in).lastHiddenState().value();              // [1, n + T or T, H]
            } else {
                result = base.encoder.forward(input, null, null).lastHiddenState().value(); // [1, T, H]
            }
            TensorJson.write(result.castTo(DataType.FLOAT), a.getPath("out"), out);
            if (a.has("out")) {
                out.println("wrote shape " + java.util.Arrays.toString(result.shape()) + " to " + a.getPath("out").toAbsolutePath());
            }
        }
    }

    /** {@code "1,2, 3"} → ids; every entry must be a non-negative integer. */
    static long[] parseIds(String text, String option) {
        String[] parts = text.split(",");
        long[] ids = new long[parts.length];
        for (int i = 0; i < parts.length; i++) {
            String p = parts[i].strip();
            try {
                ids[i] = Long.parseLong(p);
            } catch (NumberFormatException e) {
                throw new CliException("--" + option + " must be comma-separated token ids like 1,2,3; '" + p + "' is not an integer");
            }
            if (ids[i] < 0) {
                throw new CliException("--" + option + ": token id " + ids[i] + " is negative");
            }
        }
        if (ids.length == 0) {
            throw new CliException("--" + option + " is empty");
        }
        return ids;
    }
}
