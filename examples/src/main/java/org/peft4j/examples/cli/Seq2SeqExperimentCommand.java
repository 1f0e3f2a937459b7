package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.data.Imdb;
import org.peft4j.core.data.TextExample;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.model.t5.T5Config;
import org.peft4j.core.model.t5.T5ForConditionalGeneration;
import org.peft4j.core.nn.Module;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tokenizer.HfTokenizer;
import org.peft4j.core.tokenizer.Tokenizer;
import org.peft4j.core.train.DataLoader;
import org.peft4j.core.train.Dataset;
import org.peft4j.core.train.LogitsFunction;
import org.peft4j.core.train.Seq2Seq;
import org.peft4j.core.train.Trainer;
import org.peft4j.core.train.TrainingConfig;
import org.peft4j.lora.LoraConfig;
import org.peft4j.prompt.PrefixTuningConfig;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code peft4j seq2seq-experiment}: the encoder-decoder run end to end on real text. Sentences of
 * 3–6 words are cut from the bundled IMDB reviews (training reviews for training pairs, validation
 * reviews for test pairs, words limited to the most frequent ones); a small T5 is pretrained in
 * full to copy a sentence with its words reversed, saved as a Hugging Face folder (config,
 * safetensors, a word-level {@code tokenizer.json}) and reloaded; then the frozen model is adapted
 * with LoRA and with prefix tuning to copy sentences in their original order. Exact match of
 * greedy generations is reported before and after each step, with trainable parameters and
 * training time.
 */
final class Seq2SeqExperimentCommand implements Command {
    @Override
    public String name() {
        return "seq2seq-experiment";
    }

    @Override
    public String summary() {
        return "pretrain a small T5 on IMDB sentences (reverse the words), then adapt it with LoRA and prefix tuning (copy)";
    }

    @Override
    public String usage() {
        return """
                usage: peft4j seq2seq-experiment [--out DIR] [--vocab N] [--train-pairs N] [--test-pairs N]
                                                 [--pretrain-steps N] [--adapt-steps N] [--seed S]

                  --out DIR            where the pretrained model folder, the adapters and results.json go
                                       (default target/seq2seq-experiment)
                  --vocab N            most frequent IMDB words kept (default 300)
                  --train-pairs N      training sentences (default 2000), --test-pairs N test sentences (default 200)
                  --pretrain-steps N   full training steps of the reversal model (default 1500)
                  --adapt-steps N      LoRA / prefix-tuning steps on the copy task (default 400)
                """;
    }

    @Override
    public Set<String> valueOptions() {
        return Set.of("out", "vocab", "train-pairs", "test-pairs", "pretrain-steps", "adapt-steps", "seed");
    }

    @Override
    public void run(Args a, PrintStream out, PrintStream err) throws Exception {
        a.expectPositionals(0, "no arguments");
        Path dir = Path.of(a.get("out", "target/seq2seq-experiment")).toAbsolutePath().normalize();
        int vocab = a.getInt("vocab", 300);
        int nTrain = a.getInt("train-pairs", 2000);
        int nTest = a.getInt("test-pairs", 200);
        int preSteps = a.getInt("pretrain-steps", 1500);
        int adaptSteps = a.getInt("adapt-steps", 400);
        long seed = a.getLong("seed", 0);
        if (vocab < 10 || nTrain < 1 || nTest < 1 || preSteps < 1 || adaptSteps < 1) {
            throw new CliException("--vocab must be >= 10 and the pair and step counts >= 1");
        }
        Files.createDirectories(dir);

        // 1. words and sentences from real reviews
        Imdb.Split split = Imdb.bundledSplit();
        Map<String, Integer> freq = new HashMap<>();
        for (TextExample t : split.train()) {
            for (String s : sentences(t.text())) {
                for (String w : s.split(" ")) {
                    freq.merge(w, 1, Integer::sum);
                }
            }
        }
        List<String> words = new ArrayList<>(freq.keySet());
        words.sort((x, y) -> freq.get(y).equals(freq.get(x)) ? x.compareTo(y) : freq.get(y) - freq.get(x));
        Set<String> kept = new LinkedHashSet<>(words.subList(0, Math.min(vocab, words.size())));
        List<String> train = pick(split.train(), kept, nTrain, seed);
        List<String> test = pick(split.validation(), kept, nTest, seed + 1);
        test.removeAll(new java.util.HashSet<>(train));
        out.printf(Locale.ROOT, "data: %d training and %d test sentences of 3-6 words from IMDB reviews, %d-word vocabulary%n",
                train.size(), test.size(), kept.size());

        // 2. the model folder: config, tokenizer
        Path base = dir.resolve("t5-reverse");
        T5Config config = new T5Config("t5", 3 + kept.size(), 64, 16, 128, 2, 2, 4, 16, 32, 0.0, 1e-6, 1.0, "relu", true,
                0, List.of(1), 0, null);
        Path tokFile = dir.resolve("tokenizer.json");
        AtomicFiles.writeString(tokFile, wordTokenizer(new ArrayList<>(kept)));
        try (Tokenizer tok = HfTokenizer.fromFile(tokFile)) {
            List<Seq2Seq.Example> revTrain = pairs(train, tok, true);
            List<Seq2Seq.Example> revTest = pairs(test, tok, true);
            List<Seq2Seq.Example> copyTrain = pairs(train, tok, false);
            List<Seq2Seq.Example> copyTest = pairs(test, tok, false);
            ObjectNode results = JsonFiles.mapper().createObjectNode();

            // 3. pretrain in full on reversal
            T5ForConditionalGeneration m = T5ForConditionalGeneration.random(config, seed);
            double before = Seq2SeqTask.exactMatch(evalMode(m), revTest, 16);
            m.train();
            TrainingConfig pre = TrainingConfig.builder().maxSteps(preSteps).batchSize(32).learningRate(3e-3).warmupSteps(50)
                    .logInterval(Math.max(1, preSteps / 10)).seed(seed).build();
            long t0 = System.nanoTime();
            Trainer.builder(m, m.namedParameters(), Seq2Seq.loss(logits(m)), pre).progressStream(out).build()
                    .fit(DataLoader.forTraining(Dataset.of(revTrain), Seq2Seq.collator(0), pre));
            double preSeconds = Fmt.secondsSince(t0);
            m.eval();
            double after = Seq2SeqTask.exactMatch(m, revTest, 16);
            m.save(base);
            Files.copy(tokFile, base.resolve("tokenizer.json"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            out.printf(Locale.ROOT, "pretraining (full, %s parameters, %d steps, %.1f s): reversal exact match %.3f -> %.3f; saved %s%n",
                    Fmt.count(m.numParameters()), preSteps, preSeconds, before, after, base);
            ObjectNode p = results.putObject("pretrain_reverse");
            p.put("parameters", m.numParameters());
            p.put("steps", preSteps);
            p.put("seconds", preSeconds);
            p.put("exact_match_before", before);
            p.put("exact_match_after", after);

            // 4. adapt the frozen reloaded model to copying
            T5ForConditionalGeneration reloaded = T5ForConditionalGeneration.load(base);
            double copyBefore = Seq2SeqTask.exactMatch(reloaded, copyTest, 16);
            out.printf(Locale.ROOT, "frozen model on the copy task: exact match %.3f%n", copyBefore);
            results.put("copy_exact_match_frozen", copyBefore);
            LoraConfig lora = LoraConfig.builder().r(8).loraAlpha(16).build();
            PrefixTuningConfig prefix = new PrefixTuningConfig();
            prefix.setNumVirtualTokens(8);
            for (Map.Entry<String, PeftConfig> method : List.<Map.Entry<String, PeftConfig>>of(Map.entry("lora", lora),
                    Map.entry("prefix_tuning", prefix))) {
                T5ForConditionalGeneration frozen = T5ForConditionalGeneration.load(base);
                frozen.train();
                PeftModel pm = Peft.apply(frozen, method.getValue());
                long trainable = pm.trainableParameters().values().stream().mapToLong(x -> x.value().length()).sum();
                double lr = method.getKey().equals("lora") ? 3e-3 : 3e-2;
                TrainingConfig ad = TrainingConfig.builder().maxSteps(adaptSteps).batchSize(32).learningRate(lr).warmupSteps(20)
                        .logInterval(Math.max(1, adaptSteps / 5)).seed(seed).build();
                long t1 = System.nanoTime();
                TrainTask.train(pm, null, Seq2Seq.loss(logits(frozen)), null,
                        DataLoader.forTraining(Dataset.of(copyTrain), Seq2Seq.collator(0), ad), null, ad, out);
                double secs = Fmt.secondsSince(t1);
                double em = Seq2SeqTask.exactMatch(frozen, copyTest, 16);
                double revKept;
                try (PeftModel.Scope off = pm.disableAdapter()) {
                    revKept = Seq2SeqTask.exactMatch(frozen, revTest, 16);
                }
                pm.save(dir.resolve("adapter-" + method.getKey()));
                out.printf(Locale.ROOT, "%s: %s trainable parameters (%.3f%% of %s), %d steps, %.1f s: copy exact match %.3f -> %.3f%n",
                        method.getKey(), Fmt.count(trainable), 100.0 * trainable / frozen.numParameters(),
                        Fmt.count(frozen.numParameters()), adaptSteps, secs, copyBefore, em);
                ObjectNode r = results.putObject(method.getKey());
                r.put("trainable_parameters", trainable);
                r.put("steps", adaptSteps);
                r.put("learning_rate", lr);
                r.put("seconds", secs);
                r.put("copy_exact_match_before", copyBefore);
                r.put("copy_exact_match_after", em);
                r.put("reverse_exact_match_adapter_disabled", revKept);
            }
            ArrayNode ex = results.putArray("test_examples");
            for (int i = 0; i < Math.min(3, test.size()); i++) {
                ex.add(test.get(i));
            }
            JsonFiles.write(dir.resolve("results.json"), results);
            out.println("wrote " + dir.resolve("results.json"));
        }
    }

    private static T5ForConditionalGeneration evalMode(T5ForConditionalGeneration m) {
        m.eval();
        return m;
    }

    private static LogitsFunction logits(T5ForConditionalGeneration m) {
        return (model, b) -> m.forward(b.inputIds(), b.attentionMask(), m.shiftRight(b.labels()), null);
    }

    /** Lower-cased sentences of a review, words [a-z']+ joined by one space. */
    static List<String> sentences(String review) {
        List<String> out = new ArrayList<>();
        for (String s : review.replace("<br />", " ").toLowerCase(Locale.ROOT).split("[.!?;]+")) {
            String[] w = s.replaceAll("[^a-z' ]", " ").trim().split("\\s+");
            if (w.length > 0 && !w[0].isEmpty()) {
                out.add(String.join(" ", w));
            }
        }
        return out;
    }

    /** Up to n distinct sentences of 3–6 words, all in {@code vocab}, in a seeded random order. */
    static List<String> pick(List<TextExample> reviews, Set<String> vocab, int n, long seed) {
        LinkedHashSet<String> found = new LinkedHashSet<>();
        for (TextExample t : reviews) {
            for (String s : sentences(t.text())) {
                String[] w = s.split(" ");
                if (w.length >= 3 && w.length <= 6 && java.util.Arrays.stream(w).allMatch(vocab::contains)) {
                    found.add(s);
                }
            }
        }
        List<String> all = new ArrayList<>(found);
        Collections.shuffle(all, new java.util.Random(seed));
        return new ArrayList<>(all.subList(0, Math.min(n, all.size())));
    }

    static List<Seq2Seq.Example> pairs(List<String> sentences, Tokenizer tok, boolean reverse) {
        List<String> src = new ArrayList<>();
        List<String> tgt = new ArrayList<>();
        for (String s : sentences) {
            List<String> w = new ArrayList<>(List.of(s.split(" ")));
            src.add(s);
            if (reverse) {
                Collections.reverse(w);
            }
            tgt.add(String.join(" ", w));
        }
        return Seq2Seq.examples(src, tgt, tok, 16, 16, "imdb sentences");
    }

    /** A word-level tokenizer.json: {@code <pad>}=0, {@code </s>}=1, {@code <unk>}=2, the words, T5's {@code </s>} template. */
    static String wordTokenizer(List<String> words) {
        ObjectNode root = JsonFiles.mapper().createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        ObjectNode v = JsonFiles.mapper().createObjectNode();
        String[] specials = {"<pad>", "</s>", "<unk>"};
        for (int i = 0; i < specials.length; i++) {
            ObjectNode t = added.addObject();
            t.put("id", i).put("content", specials[i]).put("single_word", false).put("lstrip", false).put("rstrip", false)
                    .put("normalized", false).put("special", true);
            v.put(specials[i], i);
        }
        for (int i = 0; i < words.size(); i++) {
            v.put(words.get(i), specials.length + i);
        }
        root.putNull("normalizer");
        root.putObject("pre_tokenizer").put("type", "WhitespaceSplit");
        ObjectNode pp = root.putObject("post_processor");
        pp.put("type", "TemplateProcessing");
        ArrayNode single = pp.putArray("single");
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        single.addObject().putObject("SpecialToken").put("id", "</s>").put("type_id", 0);
        ArrayNode pair = pp.putArray("pair");
        pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        pair.addObject().putObject("SpecialToken").put("id", "</s>").put("type_id", 0);
        pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 0);
        pair.addObject().putObject("SpecialToken").put("id", "</s>").put("type_id", 0);
        ObjectNode e = pp.putObject("special_tokens").putObject("</s>");
        e.put("id", "</s>");
        e.putArray("ids").add(1);
        e.putArray("tokens").add("</s>");
        ObjectNode dec = root.putObject("decoder");
        dec.put("type", "WordPiece").put("prefix", "##").put("cleanup", false);
        ObjectNode model = root.putObject("model");
        model.put("type", "WordLevel");
        model.set("vocab", v);
        model.put("unk_token", "<unk>");
        return root.toString();
    }
}
