package org.peft4j.core.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.CheckpointException;
import org.peft4j.core.io.CheckpointWeights;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;
import java.util.regex.Pattern;

/**
 * A {@link WeightSource} reading a checkpoint with a strict, explicit key mapping; every
 * family's folder loading goes through one ({@link ModelFamily#load(Path, long, LayerLoader)}).
 *
 * <p>Each parameter is looked up under its Hugging Face name, or under that name with one of the
 * family's checkpoint prefixes removed or added: GPT-2 hub files have {@code h.0.attn…} rather
 * than {@code transformer.h.0.attn…} (a bare base-model save), a BERT task checkpoint has
 * {@code bert.embeddings…} where a {@code BertModel} has {@code embeddings…}. Problems are
 * collected while the model is built and reported together by {@link #finish()}: every missing
 * key, every checkpoint key that no parameter used (except the family's ignorable keys), and
 * every shape mismatch with key, expected and found shape — naming the folder.
 */
public final class CheckpointSource implements WeightSource, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(CheckpointSource.class);

    private final CheckpointWeights weights;
    private final String where;
    private final List<String> prefixes;
    private final Predicate<String> ignorable;
    private final Set<String> used = new LinkedHashSet<>();
    private final List<String> missing = new ArrayList<>();
    private final List<String> badShapes = new ArrayList<>();

    /**
     * @param weights   the opened checkpoint (closed by {@link #close()})
     * @param where     the folder, for messages
     * @param prefixes  key prefixes a checkpoint may lack or carry beyond the model's names
     *                  ({@code "transformer."}, {@code "model."}, {@code "bert."}); may be empty
     * @param ignorable checkpoint keys that are known buffers or duplicates and may be left unused
     */
    public CheckpointSource(CheckpointWeights weights, String where, List<String> prefixes, Predicate<String> ignorable) {
        this.weights = weights;
        this.where = where;
        this.prefixes = List.copyOf(prefixes);
        this.ignorable = ignorable;
    }

    /** Opens the weights of folder {@code dir} (single file or sharded), named by the folder in messages. */
    public static CheckpointSource open(Path dir, List<String> prefixes, Predicate<String> ignorable) throws IOException {
        return new CheckpointSource(CheckpointWeights.open(dir), dir.toString(), prefixes, ignorable);
    }

    /** A predicate matching the whole key against any of the regular expressions. */
    public static Predicate<String> keysMatching(String... regexes) {
        List<Pattern> ps = new ArrayList<>();
        for (String r : regexes) {
            ps.add(Pattern.compile(r));
        }
        return k -> ps.stream().anyMatch(p -> p.matcher(k).matches());
    }

    /** The checkpoint key holding parameter {@code name} (with or without the base-model prefix), or null. */
    public String keyFor(String name) {
        return resolve(name);
    }

    /** True if the checkpoint holds parameter {@code name} (with or without a prefix). */
    public boolean has(String name) {
        return resolve(name) != null;
    }

    /** The opened checkpoint. */
    public CheckpointWeights weights() {
        return weights;
    }

    /** Records checkpoint keys read by someone else (a {@link LayerLoader}) as used by the model. */
    public void markUsed(java.util.Collection<String> keys) {
        used.addAll(keys);
    }

    /** The name itself, else the name without (or with) each prefix in turn, whichever the checkpoint holds. */
    private String resolve(String name) {
        if (weights.contains(name)) {
            return name;
        }
        for (String p : prefixes) {
            String other = name.startsWith(p) ? name.substring(p.length()) : p + name;
            if (weights.contains(other)) {
                return other;
            }
        }
        return null;
    }

    /**
     * Replaces the value of every parameter of {@code model} by this source's tensor for its name.
     * Layers a {@link LayerLoader} replaced first (quantized linears) only have their remaining
     * parameters (biases) here; their other checkpoint keys were marked used by the loader.
     */
    public void fill(Module model) {
        for (Map.Entry<String, Parameter> e : model.namedParameters().entrySet()) {
            Parameter p = e.getValue();
            p.setValue(get(e.getKey(), p.shape(), Init.NORMAL, 0.0));
        }
    }

    @Override
    public INDArray get(String name, long[] shape, Init init, double std, int paddingRow) {
        String key = resolve(name);
        if (key == null) {
            missing.add(name);
            return Nd4j.zeros(DataType.FLOAT, shape);
        }
        used.add(key);
        long[] found = weights.info(key).shape();
        if (!Arrays.equals(found, shape)) {
            badShapes.add("'" + key + "' expected " + Arrays.toString(shape) + " found " + Arrays.toString(found)
                    + " (in " + weights.fileOf(key).getFileName() + ")");
            return Nd4j.zeros(DataType.FLOAT, shape);
        }
        INDArray v = weights.get(key);
        return v.dataType() == DataType.FLOAT ? v : v.castTo(DataType.FLOAT);
    }

    /**
     * Throws a {@link CheckpointException} naming the folder and every missing key, unexpected key
     * and shape mismatch; logs the ignored keys.
     */
    public void finish() {
        List<String> unexpected = new ArrayList<>();
        List<String> ignored = new ArrayList<>();
        for (String k : weights.keys()) {
            if (used.contains(k)) {
                continue;
            }
            if (ignorable.test(k)) {
                ignored.add(k);
            } else {
                unexpected.add(k);
            }
        }
        if (!ignored.isEmpty()) {
            LOG.debug("{}: ignored {} known buffer/duplicate key(s) {}", where, ignored.size(), ignored);
        }
        List<String> problems = new ArrayList<>();
        if (!missing.isEmpty()) {
            problems.add("missing keys " + missing);
        }
        if (!unexpected.isEmpty()) {
            Set<String> files = new LinkedHashSet<>();
            for (String k : unexpected) {
                files.add(String.valueOf(weights.fileOf(k).getFileName()));
            }
            problems.add("unexpected keys " + unexpected + " (in " + String.join(", ", files) + ")");
        }
        if (!badShapes.isEmpty()) {
            problems.add("shape mismatches " + badShapes);
        }
        if (!problems.isEmpty()) {
            throw new CheckpointException("checkpoint " + where + " does not match the model: " + String.join("; ", problems));
        }
    }

    @Override
    public void close() throws java.io.IOException {
        weights.close();
    }
}
