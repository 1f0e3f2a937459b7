package org.peft4j.core.peft;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Per-row adapter routing for one forward pass (PEFT's {@code adapter_names} argument): row
 * {@code i} of the batch goes through adapter {@code names[i]}, or through the base model alone
 * when the name is {@link #BASE}. Adapter layers read the routing of the current thread while the
 * scope opened by {@link PeftModel#mixedBatch} is open.
 *
 * <p>An adapter layer sees its input with the batch as the leading axis ({@code [batch, ...]}).
 * If a model flattens batch and sequence before a layer ({@code [batch*seq, hidden]}), the leading
 * size is a multiple of the batch and each name covers its row's consecutive block.
 */
public final class MixedBatch implements AutoCloseable {
    /** The name that routes a row around every adapter. */
    public static final String BASE = "__base__";

    private static final ThreadLocal<MixedBatch> CURRENT = new ThreadLocal<>();

    private final String[] names;
    private final MixedBatch previous;

    private MixedBatch(String[] names) {
        this.names = names;
        this.previous = CURRENT.get();
        CURRENT.set(this);
    }

    /** Opens a routing scope on this thread; prefer {@link PeftModel#mixedBatch}, which validates the names. */
    public static MixedBatch open(List<String> names) {
        if (names == null || names.isEmpty()) {
            throw new IllegalArgumentException("adapter names for a mixed batch must not be empty");
        }
        return new MixedBatch(names.toArray(new String[0]));
    }

    /** The routing of the current thread, or null outside a mixed-batch scope. */
    public static MixedBatch current() {
        return CURRENT.get();
    }

    public int batchSize() {
        return names.length;
    }

    public String name(int row) {
        return names[row];
    }

    public List<String> names() {
        return List.of(names);
    }

    /**
     * Row groups for an input whose leading axis has {@code leading} entries: for each distinct
     * name (first-seen order), the indices along that axis that belong to it.
     */
    public Map<String, int[]> groups(long leading) {
        if (leading % names.length != 0) {
            throw new IllegalArgumentException("mixed batch of " + names.length + " adapter names does not fit an input "
                    + "whose leading axis is " + leading + " (must be the batch size or a multiple of it)");
        }
        int per = (int) (leading / names.length);
        Map<String, List<Integer>> tmp = new LinkedHashMap<>();
        for (int i = 0; i < names.length; i++) {
            List<Integer> l = tmp.computeIfAbsent(names[i], k -> new ArrayList<>());
            for (int j = 0; j < per; j++) {
                l.add(i * per + j);
            }
        }
        Map<String, int[]> out = new LinkedHashMap<>();
        tmp.forEach((k, v) -> out.put(k, v.stream().mapToInt(Integer::intValue).toArray()));
        return out;
    }

    /** Rows {@code rows} of {@code x} along its leading axis, as a new contiguous array {@code [rows.length, ...]}. */
    public static INDArray selectRows(INDArray x, int[] rows) {
        long[] shape = x.shape().clone();
        long inner = x.length() / shape[0];
        INDArray flat = (x.ordering() == 'c' ? x : x.dup('c')).reshape('c', shape[0], inner);
        INDArray picked = Nd4j.pullRows(flat, 1, rows, 'c');
        shape[0] = rows.length;
        return picked.reshape('c', shape);
    }

    /** Writes {@code src [rows.length, ...]} into rows {@code rows} of {@code dst} (leading axis), in place. */
    public static void putRows(INDArray dst, int[] rows, INDArray src) {
        requireC(dst);
        long inner = dst.length() / dst.size(0);
        INDArray d2 = dst.reshape('c', dst.size(0), inner);
        INDArray s2 = (src.ordering() == 'c' ? src : src.dup('c')).reshape('c', rows.length, inner);
        for (int i = 0; i < rows.length; i++) {
            d2.getRow(rows[i]).assign(s2.getRow(i));
        }
    }

    /** Adds {@code src [rows.length, ...]} into rows {@code rows} of {@code dst} (leading axis), in place. */
    public static void addRows(INDArray dst, int[] rows, INDArray src) {
        requireC(dst);
        long inner = dst.length() / dst.size(0);
        INDArray d2 = dst.reshape('c', dst.size(0), inner);
        INDArray s2 = (src.ordering() == 'c' ? src : src.dup('c')).reshape('c', rows.length, inner);
        for (int i = 0; i < rows.length; i++) {
            d2.getRow(rows[i]).addi(s2.getRow(i));
        }
    }

    private static void requireC(INDArray dst) {
        if (dst.ordering() != 'c' || dst.isView()) {
            throw new IllegalArgumentException("destination of a row update must be a c-ordered array that owns its data");
        }
    }

    @Override
    public void close() {
        if (CURRENT.get() != this) {
            throw new IllegalStateException("mixed-batch scopes must be closed in reverse order of opening");
        }
        if (previous == null) {
            CURRENT.remove();
        } else {
            CURRENT.set(previous);
        }
    }

    @Override
    public String toString() {
        return "MixedBatch" + Arrays.toString(names);
    }
}
