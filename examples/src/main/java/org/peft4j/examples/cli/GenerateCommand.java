package org.peft4j.examples.cli;

import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.model.generate.GenerationConfig;
import org.peft4j.core.model.generate.GenerationResult;
import org.peft4j.core.model.generate.Generator;
import org.peft4j.core.model.gpt2.Gpt2LMHeadModel;
import org.peft4j.core.model.llama.LlamaForCausalLM;
import org.peft4j.core.tokenizer.Tokenizer;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

/** {@code peft4j generate --model DIR --prompt TEXT [sampling flags] [--adapter DIR]}. */
final class GenerateCommand implements Command {
    @Override
    public String name() {
        return "generate";
    }

    @Override
    public String summary() {
        return "generate text with a decoder (GPT-2 / LLaMA family) or an encoder-decoder (T5), optionally with an adapter";
    }

    @Override
    public String usage() {
        return """
                usage: peft4j generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [--adapter DIR]
                                       [--max-new-tokens N] [--greedy | --temperature T --top-k K --top-p P --seed S]
                                       [--repetition-penalty R] [--num-beams K --length-penalty L --early-stopping] [--no-stop]

                Continues the prompt with the model's KV-cached generator and prints the prompt and the
                continuation; for an encoder-decoder (T5 family) the prompt is the encoder input and the
                output is the decoder's text, started from the config's decoder_start_token_id. --prompt needs a tokenizer.json in the model folder; --prompt-ids takes token
                ids directly (for folders without a tokenizer) and prints the generated ids.
                Decoding is greedy unless --temperature, --top-k or --top-p is given (then it samples, seeded
                by --seed, default 0); --greedy forces greedy decoding. Generation stops at the config's
                eos_token_id unless --no-stop.
                  --max-new-tokens N      tokens to generate (default 32)
                  --temperature T         sampling temperature (default 1.0)
                  --top-k K               keep the K most likely tokens (0 = off)
                  --top-p P               nucleus sampling mass in (0, 1] (1 = off)
                  --repetition-penalty R  Hugging Face's repetition penalty (1 = off)
                  --num-beams K           beam search with K beams (Hugging Face's BeamSearchScorer; not with sampling)
                  --length-penalty L      beam search: hypotheses score sum log p / length^L (default 1.0)
                  --early-stopping        beam search: a row stops once it has K finished hypotheses
                """;
    }

    @Override
    public Set<String> valueOptions() {
        return Set.of("model", "prompt", "prompt-ids", "adapter", "max-new-tokens", "temperature", "top-k", "top-p",
                "repetition-penalty", "seed", "num-beams", "length-penalty");
    }

    @Override
    public Set<String> flagOptions() {
        return Set.of("greedy", "no-stop", "early-stopping");
    }

    @Override
    public void run(Args a, PrintStream out, PrintStream err) throws Exception {
        a.expectPositionals(0, "no arguments");
        if (a.has("prompt") == a.has("prompt-ids")) {
            throw new CliException("give exactly one of --prompt TEXT or --prompt-ids 1,2,3");
        }
        boolean sample = !a.flag("greedy") && (a.has("temperature") || a.has("top-k") || a.has("top-p"));
        int topK = a.getInt("top-k", 0);
        if (topK < 0) {
            throw new CliException("--top-k must be >= 0, got " + topK);
        }
        double topP = a.getDouble("top-p", 1.0);
        if (!(topP > 0 && topP <= 1)) {
            throw new CliException("--top-p must be in (0, 1], got " + topP);
        }
        int maxNew = a.getInt("max-new-tokens", 32);
        if (maxNew < 0) {
            throw new CliException("--max-new-tokens must be >= 0, got " + maxNew);
        }
        Path adapter = a.getPath("adapter");
        Classification.Opened o = Classification.openModel(a.get("model"), adapter, 0);
        int beams = a.getInt("num-beams", 1);
        if (beams < 1) {
            throw new CliException("--num-beams must be >= 1, got " + beams);
        }
        if (beams > 1 && sample) {
            throw new CliException("--num-beams " + beams + " is beam search, which does not sample: drop --temperature/--top-k/--top-p");
        }
        try (Models.Base base = o.base()) {
            boolean s2s = base.kind == Models.Kind.SEQ2SEQ;
            if (!s2s) {
                Models.requireCausalLm(base, "generate");
            }
            if (o.model() != null) {
                throw new CliException("adapter " + adapter + " is a sequence-classification adapter (it saves the "
                        + o.model().headName() + " head); generate needs a causal-LM adapter");
            }
            int vocab = s2s ? base.seq2seq.vocabSize() : base.decoder.vocabSize();
            Tokenizer tok = a.has("prompt") ? base.requireTokenizer("--prompt") : base.tokenizer;
            int[] prompt;
            if (a.has("prompt")) {
                prompt = tok.encode(a.get("prompt")).ids();
                if (prompt.length == 0) {
                    throw new CliException("--prompt encodes to no tokens");
                }
            } else {
                prompt = Arrays.stream(LogitsCommand.parseIds(a.get("prompt-ids"), "prompt-ids")).mapToInt(Math::toIntExact).toArray();
            }
            for (int id : prompt) {
                if (id >= vocab) {
                    throw new CliException("prompt token id " + id + " is outside the vocabulary [0, " + vocab + ")");
                }
            }
            List<Integer> eos = s2s ? base.seq2seq.config().eosTokenIds() : eosIds(base.decoder);
            int pad = s2s ? base.seq2seq.config().padTokenId()
                    : tok != null && tok.padId() >= 0 ? tok.padId() : eos.isEmpty() ? 0 : eos.get(0);
            GenerationConfig cfg = GenerationConfig.builder()
                    .maxNewTokens(maxNew)
                    .doSample(sample)
                    .temperature(a.getPositiveDouble("temperature", 1.0))
                    .topK(topK).topP(topP)
                    .repetitionPenalty(a.getPositiveDouble("repetition-penalty", 1.0))
                    .stopTokenIds(a.flag("no-stop") ? Set.of() : new LinkedHashSet<>(eos))
                    .padTokenId(pad)
                    .seed(a.getLong("seed", 0))
                    .numBeams(beams).lengthPenalty(a.getDouble("length-penalty", 1.0)).earlyStopping(a.flag("early-stopping"))
                    .build();
            Generator g = s2s ? new Generator(base.seq2seq) : new Generator(base.decoder);
            GenerationResult r = g.generate(new int[][]{prompt}, cfg);
            int[] gen = r.tokens(0);
            if (a.has("prompt") && s2s) {
                out.println(tok.decode(gen));
            } else if (a.has("prompt")) {
                out.print(a.get("prompt"));
                out.println(tok.decode(gen));
            } else {
                out.println("prompt ids:    " + join(prompt));
                out.println("generated ids: " + join(gen));
                if (tok != null) {
                    out.println("text: " + tok.decode(gen));
                }
            }
            err.printf("(%d new tokens, %s)%n", gen.length, sample ? "sampled" : beams > 1 ? beams + "-beam search" : "greedy");
        }
    }

    static List<Integer> eosIds(DecoderLM model) {
        if (model instanceof Gpt2LMHeadModel g) {
            return g.config().eosTokenIds();
        }
        if (model instanceof LlamaForCausalLM l) {
            return l.config().eosTokenIds();
        }
        return List.of();
    }

    static String join(int[] ids) {
        return Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(","));
    }
}
