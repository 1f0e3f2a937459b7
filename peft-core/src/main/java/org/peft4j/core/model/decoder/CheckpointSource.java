package org.peft4j.core.model.decoder;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.CheckpointException;
import org.peft4j.core.io.CheckpointWeights;
import org.peft4j.core.model.WeightSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;
import java.util.regex.Pattern;

/**
 * A {@link WeightSource} reading a checkpoint with a strict, explicit key mapping.
 *
 * <p>Each parameter is looked up under its Hugging Face name, or, when the checkpoint was saved
 * from the bare base model (GPT-2 hub files have {@code h.0.attn…} rather than
 * {@code transformer.h.0.attn…}), under the name without the base-model prefix. Problems are
 * collected while the model is built and reported together by {@link #finish()}: every missing
 * key, every checkpoint key that no parameter used (except documented ignorable buffers), and
 * every shape mismatch with key, expected and found shape — naming the folder.
 */
public final class CheckpointSource implements WeightSource, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(CheckpointSource.class);

    private final CheckpointWeights weights;
    private final String where;
    private final String basePrefix;
    private final Predicate<String> ignorable;
    private final Set<String> used = new LinkedHashSet<>();
    private final List<String> missing = new ArrayList<>();
    private final List<String> badShapes = new ArrayList<>();

    /**
     * @param weights    the opened checkpoint (closed by {@link #close()})
     * @param where      the folder, for messages
     * @param basePrefix the base-model prefix that bare checkpoints lack ({@code "transformer."}, {@code "model."})
     * @param ignorable  checkpoint keys that are known buffers or duplicates and may be left unused
     */
    public CheckpointSource(CheckpointWeights weights, String where, String basePrefix, Predicate<String> ignorable) {
        this.weights = weights;
        this.where = where;
        this.basePrefix = basePrefix;
        this.ignorable = ignorable;
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

    /** The opened checkpoint. */
    public CheckpointWeights weights() {
        return weights;
    }

    /** Records checkpoint keys read by someone else (a {@link LayerLoader}) as used by the model. */
    public void markUsed(java.util.Collection<String> keys) {
        used.addAll(keys);
    }

    private String resolve(String name) {
        if (weights.contains(name)) {
            return name;
        }
        if (basePrefix != null && name.startsWith(basePrefix)) {
            String bare = name.substring(basePrefix.length());
            if (weights.contains(bare)) {
                return bare;
            }
        }
        return null;
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
            problems.add("unexpected keys " + unexpected);
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
