package org.peft4j.distill;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.HeadModel;
import org.peft4j.core.model.HeadOutput;
import org.peft4j.core.nn.Module;
import org.peft4j.core.peft.PeftException;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.train.Batch;
import org.peft4j.core.train.DataLoader;
import org.peft4j.core.train.Dataset;
import org.peft4j.core.train.Example;
import org.peft4j.core.train.PaddingCollator;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The teacher's outputs on a dataset, computed once (teacher in eval mode, under {@link NoGrad})
 * and kept on disk as one safetensors file, so every epoch reads them instead of running the teacher:
 * {@code logits [N, labels]} and, for each asked-for {@code hidden_states} index {@code l},
 * {@code hidden.l [ΣT, hidden]} (example i's unpadded rows at {@code offsets[i] .. offsets[i+1]}).
 * The file records a fingerprint of the teacher key and every example's token ids; a file with
 * another fingerprint is recomputed, never reused.
 */
public final class TeacherCache {
    static final String LOGITS = "logits";
    static final String OFFSETS = "offsets";
    static final String HIDDEN = "hidden.";
    static final String FINGERPRINT = "fingerprint";

    private final INDArray logits;               // [N, C] FLOAT
    private final Map<Integer, INDArray> hidden;  // layer -> [ΣT, H] FLOAT
    private final long[] offsets;                 // N + 1
    private final String fingerprint;

    private TeacherCache(INDArray logits, Map<Integer, INDArray> hidden, long[] offsets, String fingerprint) {
        this.logits = logits;
        this.hidden = hidden;
        this.offsets = offsets;
        this.fingerprint = fingerprint;
    }

    public int size() {
        return (int) logits.size(0);
    }

    public int numLabels() {
        return (int) logits.size(1);
    }

    public Set<Integer> hiddenLayers() {
        return new TreeSet<>(hidden.keySet());
    }

    public String fingerprint() {
        return fingerprint;
    }

    /** All logits {@code [N, labels]}. */
    public INDArray logits() {
        return logits;
    }

    /** The logits of the given examples {@code [idx.length, labels]}. */
    public INDArray logits(int[] idx) {
        return Nd4j.pullRows(logits, 1, idx);
    }

    /** Layer {@code layer}'s states of the given examples, right-padded with zeros to {@code seq}: {@code [idx.length, seq, H]}. */
    public INDArray hidden(int layer, int[] idx, int seq) {
        INDArray h = hidden.get(layer);
        if (h == null) {
            throw new IllegalArgumentException("teacher cache has no hidden state for layer " + layer + " (has " + hiddenLayers() + ")");
        }
        INDArray out = Nd4j.zeros(h.dataType(), idx.length, seq, h.size(1));
        for (int b = 0; b < idx.length; b++) {
            long from = offsets[idx[b]];
            long len = Math.min(seq, offsets[idx[b] + 1] - from);
            out.get(NDArrayIndex.point(b), NDArrayIndex.interval(0, len), NDArrayIndex.all())
                    .assign(h.get(NDArrayIndex.interval(from, from + len), NDArrayIndex.all()));
        }
        return out;
    }

    /**
     * Runs the teacher over {@code examples} in order, in batches of {@code batchSize}.
     *
     * @param teacher     the task model (its forward gives logits and, when asked, hidden states)
     * @param teacherRoot what to put in eval mode: the teacher's PeftModel, or the teacher itself
     * @param layers      {@code hidden_states} indices to keep (empty = logits only)
     * @param key         names the teacher (model, adapter) in the fingerprint
     * @param progress    one line per batch (carriage return) and a final line; null = silent
     */
    public static TeacherCache compute(HeadModel teacher, Module teacherRoot, List<Example> examples, int padId,
                                       int batchSize, Set<Integer> layers, String key, PrintStream progress) {
        if (examples.isEmpty()) {
            throw new IllegalArgumentException("teacher cache: no examples");
        }
        teacherRoot.eval();
        boolean wantHidden = !layers.isEmpty();
        DataLoader<Example> loader = DataLoader.forEvaluation(Dataset.of(examples), PaddingCollator.dynamic(padId), batchSize);
        List<INDArray> logitParts = new ArrayList<>();
        Map<Integer, List<INDArray>> hiddenParts = new LinkedHashMap<>();
        long[] offsets = new long[examples.size() + 1];
        for (int i = 0; i < examples.size(); i++) {
            offsets[i + 1] = offsets[i] + examples.get(i).ids().length;
        }
        int row = 0;
        int done = 0;
        long t0 = System.nanoTime();
        try (NoGrad ignored = NoGrad.enter()) {
            for (Batch b : loader) {
                HeadOutput o = teacher.forward(Distiller.inputs(teacher.backbone(), b, wantHidden, false));
                logitParts.add(o.logits().value().castTo(DataType.FLOAT));
                for (int layer : layers) {
                    List<org.peft4j.core.tensor.Tensor> hs = o.backbone().hiddenStates();
                    if (layer >= hs.size()) {
                        throw new IllegalArgumentException("teacher layer " + layer + " does not exist: the teacher has "
                                + hs.size() + " hidden states (0 = embeddings .. " + (hs.size() - 1) + ")");
                    }
                    INDArray h = hs.get(layer).value();          // [B, T, H]
                    for (int r = 0; r < b.size(); r++) {
                        int len = examples.get(row + r).ids().length;
                        hiddenParts.computeIfAbsent(layer, k -> new ArrayList<>()).add(
                                h.get(NDArrayIndex.point(r), NDArrayIndex.interval(0, len), NDArrayIndex.all())
                                        .castTo(DataType.FLOAT).dup());
                    }
                }
                row += b.size();
                done++;
                if (progress != null) {
                    progress.printf(Locale.ROOT, "\rteacher pass: batch %d/%d (%d examples, %.1fs)", done, loader.numBatches(),
                            row, (System.nanoTime() - t0) / 1e9);
                }
            }
        }
        if (progress != null) {
            progress.println();
        }
        Map<Integer, INDArray> hidden = new LinkedHashMap<>();
        hiddenParts.forEach((l, parts) -> hidden.put(l, Nd4j.concat(0, parts.toArray(INDArray[]::new))));
        return new TeacherCache(Nd4j.concat(0, logitParts.toArray(INDArray[]::new)), hidden, offsets,
                fingerprint(key, examples, layers));
    }

    /**
     * The cache in {@code file} when its fingerprint matches these examples, teacher key and layers;
     * otherwise computes it and writes {@code file}. {@code progress} also gets one line saying which.
     */
    public static TeacherCache loadOrCompute(Path file, HeadModel teacher, Module teacherRoot, List<Example> examples,
                                             int padId, int batchSize, Set<Integer> layers, String key, PrintStream progress) {
        String want = fingerprint(key, examples, layers);
        if (Files.isRegularFile(file)) {
            TeacherCache c = load(file);
            if (c.fingerprint.equals(want)) {
                if (progress != null) {
                    progress.println("teacher pass: reusing " + file + " (" + c.size() + " examples)");
                }
                return c;
            }
            if (progress != null) {
                progress.println("teacher pass: " + file + " was made for other examples or another teacher; recomputing");
            }
        }
        TeacherCache c = compute(teacher, teacherRoot, examples, padId, batchSize, layers, key, progress);
        c.save(file);
        return c;
    }

    public void save(Path file) {
        Map<String, INDArray> t = new LinkedHashMap<>();
        t.put(LOGITS, logits);
        t.put(OFFSETS, Nd4j.createFromArray(offsets));
        hidden.forEach((l, h) -> t.put(HIDDEN + l, h));
        try {
            if (file.getParent() != null) {
                Files.createDirectories(file.getParent());
            }
            SafeTensors.write(file, t, Map.of(FINGERPRINT, fingerprint));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the teacher cache " + file, e);
        }
    }

    public static TeacherCache load(Path file) {
        try {
            Map<String, INDArray> t = SafeTensors.load(file);
            String fp = SafeTensors.readMetadata(file).get(FINGERPRINT);
            if (!t.containsKey(LOGITS) || !t.containsKey(OFFSETS) || fp == null) {
                throw new PeftException(file + " is not a teacher cache (needs '" + LOGITS + "', '" + OFFSETS
                        + "' and a '" + FINGERPRINT + "' metadata entry)");
            }
            Map<Integer, INDArray> hidden = new LinkedHashMap<>();
            t.forEach((k, v) -> {
                if (k.startsWith(HIDDEN)) {
                    hidden.put(Integer.parseInt(k.substring(HIDDEN.length())), v);
                }
            });
            return new TeacherCache(t.get(LOGITS), hidden, t.get(OFFSETS).castTo(DataType.INT64).toLongVector(), fp);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the teacher cache " + file, e);
        }
    }

    /** SHA-256 over the teacher key, the layers and every example's token ids (labels do not change teacher outputs). */
    static String fingerprint(String key, List<Example> examples, Set<Integer> layers) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update((key + "|" + new TreeSet<>(layers) + "|" + examples.size()).getBytes(StandardCharsets.UTF_8));
            java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(4);
            for (Example e : examples) {
                for (int id : e.ids()) {
                    md.update(buf.clear().putInt(id).array());
                }
                md.update(buf.clear().putInt(-1).array());
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
