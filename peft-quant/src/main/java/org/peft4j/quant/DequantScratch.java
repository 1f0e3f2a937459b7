package org.peft4j.quant;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.HashMap;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Reusable dense buffers that quantized layers dequantize into right before a GEMM. One buffer
 * per thread, dtype and weight shape (a transformer has only a handful of distinct linear shapes),
 * allocated once outside any workspace and overwritten by every use, so the dense weights of a
 * quantized model are never resident at the same time: a buffer is valid only until the next
 * {@link #dequantize} call of the same shape on the same thread.
 */
final class DequantScratch {
    private static final ThreadLocal<Map<String, INDArray>> BUFFERS = ThreadLocal.withInitial(HashMap::new);
    private static final ThreadLocal<float[]> CHUNKS = ThreadLocal.withInitial(() -> new float[Quantized4bit.CHUNK]);
    /** Weights with fewer values are dequantized on the calling thread alone. */
    private static final long PARALLEL_MIN = 1L << 18;

    private DequantScratch() {
    }

    /** The scratch {@code [out, in]} array of {@code dt} (FLOAT or DOUBLE) holding {@code w} dequantized. */
    static INDArray dequantize(QuantizedTensor w, DataType dt) {
        long[] shape = w.shape();
        String key = dt + ":" + shape[0] + "x" + shape[1];
        Map<String, INDArray> buffers = BUFFERS.get();
        INDArray buf = buffers.get(key);
        if (buf == null) {
            try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
                buf = Nd4j.createUninitialized(dt, shape[0], shape[1]);
            }
            buffers.put(key, buf);
        }
        fill(w, buf);
        return buf;
    }

    /** A new dense {@code [out, in]} FLOAT array holding {@code w} dequantized (not a scratch buffer). */
    static INDArray dense(QuantizedTensor w) {
        long[] shape = w.shape();
        INDArray out;
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            out = Nd4j.createUninitialized(DataType.FLOAT, shape[0], shape[1]);
        }
        fill(w, out);
        return out;
    }

    /** Writes every value of {@code w} into the contiguous array {@code dst} (FLOAT or DOUBLE). */
    static void fill(QuantizedTensor w, INDArray dst) {
        long n = w.numel();
        if (dst.length() != n) {
            throw new IllegalArgumentException("buffer of " + dst.length() + " values for a weight of " + n);
        }
        int chunk = Quantized4bit.CHUNK;
        int chunks = (int) ((n + chunk - 1) / chunk);
        if (dst.dataType() == DataType.DOUBLE) {
            int size = (int) Math.min(chunk, n);
            float[] tmp = new float[size];
            double[] wide = new double[size];
            for (int c = 0; c < chunks; c++) {
                long from = (long) c * chunk;
                int len = (int) Math.min(chunk, n - from);
                w.dequantize(from, len, tmp, 0);
                NativeArrays.putDoubles(dst, from, tmp, 0, len, wide);
            }
            return;
        }
        if (dst.dataType() != DataType.FLOAT) {
            throw new IllegalArgumentException("quantized layers compute in FLOAT or DOUBLE, not " + dst.dataType());
        }
        IntStream range = IntStream.range(0, chunks);
        if (n >= PARALLEL_MIN) {
            range = range.parallel();
        }
        range.forEach(c -> {
            float[] tmp = CHUNKS.get();
            long from = (long) c * chunk;
            int len = (int) Math.min(chunk, n - from);
            w.dequantize(from, len, tmp, 0);
            NativeArrays.putFloats(dst, from, tmp, 0, len);
        });
    }

    /** Drops this thread's buffers (e.g. after a model was unloaded). */
    static void release() {
        BUFFERS.get().clear();
    }

    /** Bytes held by this thread's buffers. */
    static long bytesHeld() {
        long b = 0;
        for (INDArray a : BUFFERS.get().values()) {
            b += a.length() * a.dataType().width();
        }
        return b;
    }
}
