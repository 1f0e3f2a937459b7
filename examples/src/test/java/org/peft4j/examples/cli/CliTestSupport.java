package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** Runs the CLI in-process and prepares tiny model folders (the peft-core test fixtures plus a word-level tokenizer). */
final class CliTestSupport {
    static final ObjectMapper JSON = new ObjectMapper();
    /** peft-core's committed fixtures (surefire runs with the module folder as working directory). */
    static final Path FIXTURES = Path.of("..", "peft-core", "src", "test", "resources", "fixtures").toAbsolutePath().normalize();

    private CliTestSupport() {
    }

    record Run(int code, String out, String err) {
        @Override
        public String toString() {
            return "exit " + code + "\n--- stdout ---\n" + out + "\n--- stderr ---\n" + err;
        }
    }

    static Run cli(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            code = new Peft4jCli().run(args, o, e);
        }
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    static Path fixture(String name) {
        return FIXTURES.resolve(name);
    }

    /** Copies a fixture model folder (config + weights only) into {@code dir}. */
    static Path copyModel(String fixture, Path dir) throws IOException {
        Files.createDirectories(dir);
        for (String f : List.of("config.json", "model.safetensors")) {
            Files.copy(fixture(fixture).resolve(f), dir.resolve(f));
        }
        return dir;
    }

    /** The words of the tiny tokenizers: {@code w<i>} for id i (ids below {@code firstWord} are special tokens). */
    static String word(int id) {
        return "w" + id;
    }

    /**
     * A word-level {@code tokenizer.json} over {@code vocab} ids: with {@code bert} the BERT specials
     * [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3 and a [CLS] … [SEP] template; otherwise <unk>=0 and no
     * template (GPT-2 style). Every other id i is the word "w{i}", split on whitespace.
     */
    static void writeWordTokenizer(Path dir, int vocab, boolean bert) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        ObjectNode v = JSON.createObjectNode();
        List<String> specials = bert ? List.of("[PAD]", "[UNK]", "[CLS]", "[SEP]") : List.of("<unk>");
        for (int i = 0; i < specials.size(); i++) {
            ObjectNode t = added.addObject();
            t.put("id", i);
            t.put("content", specials.get(i));
            t.put("single_word", false);
            t.put("lstrip", false);
            t.put("rstrip", false);
            t.put("normalized", false);
            t.put("special", true);
            v.put(specials.get(i), i);
        }
        for (int i = specials.size(); i < vocab; i++) {
            v.put(word(i), i);
        }
        root.putNull("normalizer");
        root.putObject("pre_tokenizer").put("type", "Whitespace");
        if (bert) {
            ObjectNode pp = root.putObject("post_processor");
            pp.put("type", "TemplateProcessing");
            ArrayNode single = pp.putArray("single");
            single.addObject().putObject("SpecialToken").put("id", "[CLS]").put("type_id", 0);
            single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
            single.addObject().putObject("SpecialToken").put("id", "[SEP]").put("type_id", 0);
            ArrayNode pair = pp.putArray("pair");
            pair.addObject().putObject("SpecialToken").put("id", "[CLS]").put("type_id", 0);
            pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
            pair.addObject().putObject("SpecialToken").put("id", "[SEP]").put("type_id", 0);
            pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
            pair.addObject().putObject("SpecialToken").put("id", "[SEP]").put("type_id", 1);
            ObjectNode st = pp.putObject("special_tokens");
            for (String s : List.of("[CLS]", "[SEP]")) {
                ObjectNode e = st.putObject(s);
                e.put("id", s);
                e.putArray("ids").add(s.equals("[CLS]") ? 2 : 3);
                e.putArray("tokens").add(s);
            }
        } else {
            root.putNull("post_processor");
        }
        root.putNull("decoder");
        ObjectNode model = root.putObject("model");
        model.put("type", "WordLevel");
        model.set("vocab", v);
        model.put("unk_token", bert ? "[UNK]" : "<unk>");
        Files.writeString(dir.resolve("tokenizer.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
    }

    /** {"shape": [...], "values": [...]} → values as floats, checking the shape. */
    static float[] values(JsonNode n, long... shape) {
        ArrayNode s = (ArrayNode) n.get("shape");
        long[] got = new long[s.size()];
        for (int i = 0; i < got.length; i++) {
            got[i] = s.get(i).asLong();
        }
        if (!java.util.Arrays.equals(got, shape)) {
            throw new AssertionError("shape " + java.util.Arrays.toString(got) + ", expected " + java.util.Arrays.toString(shape));
        }
        ArrayNode v = (ArrayNode) n.get("values");
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) v.get(i).asDouble();
        }
        return out;
    }

    static List<String> fileNames(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            List<String> out = new ArrayList<>(s.map(p -> p.getFileName().toString()).sorted().toList());
            return out;
        }
    }

    /** Deletes {@code dir} and everything under it, if it exists. */
    static void deleteRecursively(Path dir) throws IOException {
        if (!Files.exists(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
