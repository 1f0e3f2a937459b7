package org.peft4j.core.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;
import java.util.EnumMap;
import java.util.Map;

/**
 * Rotary position embedding tables in the Hugging Face layout:
 * {@code inv_freq[i] = 1 / theta^(2i/d)} for {@code i < d/2}, {@code freqs = pos ⊗ inv_freq},
 * {@code emb = cat(freqs, freqs)}, and {@code cos(emb)}, {@code sin(emb)} of shape {@code [T, d]}
 * for positions {@code offset .. offset+T-1}. Applied with {@link Ops#rotary}
 * ({@code x·cos + rotate_half(x)·sin}).
 *
 * <p>The default rope type follows Hugging Face's float32 arithmetic (inverse frequencies and
 * angles rounded to float32 before the cosine) so tables agree with PyTorch to float precision
 * even at long positions. {@code linear} scaling divides positions by the factor.
 *
 * <p>Tables are computed once up to the largest position seen (grown by doubling) and served as
 * row views; thread-safe.
 */
public final class RotaryEmbedding {
    private final int headDim;
    private final double theta;
    private final double linearScale;
    private final float[] invFreq;
    private final Map<DataType, INDArray[]> tables = new EnumMap<>(DataType.class);
    private long cachedLength;

    /** The default rope type: {@code rope_theta} (10000 for LLaMA 1/2, 500000 for LLaMA 3, 1e6 for Qwen2). */
    public RotaryEmbedding(int headDim, double theta) {
        this(headDim, theta, 1.0);
    }

    /** With {@code rope_scaling = {type: linear, factor}}: positions are divided by {@code factor}. */
    public RotaryEmbedding(int headDim, double theta, double linearScalingFactor) {
        if (headDim <= 0 || headDim % 2 != 0) {
            throw new IllegalArgumentException("rotary head dimension must be positive and even, got " + headDim);
        }
        if (!(theta > 0)) {
            throw new IllegalArgumentException("rope_theta must be positive, got " + theta);
        }
        if (!(linearScalingFactor > 0)) {
            throw new IllegalArgumentException("rope scaling factor must be positive, got " + linearScalingFactor);
        }
        this.headDim = headDim;
        this.theta = theta;
        this.linearScale = linearScalingFactor;
        int half = headDim / 2;
        invFreq = new float[half];
        for (int i = 0; i < half; i++) {
            // HF: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in float32
            float exponent = (float) (2 * i) / (float) headDim;
            float pow = (float) Math.pow(theta, exponent);
            float f = 1.0f / pow;
            invFreq[i] = linearScalingFactor == 1.0 ? f : (float) (f / linearScalingFactor);
        }
    }

    public int headDim() {
        return headDim;
    }

    public double theta() {
        return theta;
    }

    public double linearScalingFactor() {
        return linearScale;
    }

    /** The inverse frequencies {@code [d/2]} (after scaling), as float32 values. */
    public float[] inverseFrequencies() {
        return invFreq.clone();
    }

    /**
     * {@code {cos, sin}}, each {@code [length, headDim]} in {@code dtype}, for positions
     * {@code offset .. offset+length-1}. The arrays are read-only views of a shared table.
     */
    public synchronized INDArray[] cosSin(long offset, long length, DataType dtype) {
        if (offset < 0 || length <= 0) {
            throw new IllegalArgumentException("rotary positions need offset >= 0 and length > 0, got offset="
                    + offset + ", length=" + length);
        }
        long end = offset + length;
        if (end > cachedLength) {
            long n = Math.max(64, cachedLength);
            while (n < end) {
                n *= 2;
            }
            tables.clear();
            cachedLength = n;
        }
        INDArray[] t = tables.get(dtype);
        if (t == null) {
            // long-lived tables: never inside a caller's per-step workspace
            try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
                t = buildTables(dtype);
            }
            tables.put(dtype, t);
        }
        return new INDArray[]{
                t[0].get(NDArrayIndex.interval(offset, end), NDArrayIndex.all()),
                t[1].get(NDArrayIndex.interval(offset, end), NDArrayIndex.all())};
    }

    private INDArray[] buildTables(DataType dtype) {
        int n = Math.toIntExact(cachedLength);
        int half = headDim / 2;
        double[] cos = new double[n * headDim];
        double[] sin = new double[n * headDim];
        for (int p = 0; p < n; p++) {
            for (int i = 0; i < half; i++) {
                // the angle is a float32 product in HF (position · inv_freq)
                float angle = (float) p * invFreq[i];
                double c = Math.cos(angle);
                double s = Math.sin(angle);
                cos[p * headDim + i] = c;
                cos[p * headDim + half + i] = c;
                sin[p * headDim + i] = s;
                sin[p * headDim + half + i] = s;
            }
        }
        INDArray c = Nd4j.create(cos, new long[]{n, headDim}, DataType.DOUBLE);
        INDArray s = Nd4j.create(sin, new long[]{n, headDim}, DataType.DOUBLE);
        if (dtype != DataType.DOUBLE) {
            c = c.castTo(dtype);
            s = s.castTo(dtype);
        }
        return new INDArray[]{c, s};
    }

    /**
     * Rotates {@code x [..., T, headDim]} (queries or keys, heads before positions) for positions
     * {@code offset .. offset+T-1}.
     */
    public Tensor apply(Tensor x, long offset) {
        if (x.rank() < 2 || x.size(-1) != headDim) {
            throw new IllegalArgumentException("rotary embedding for head dim " + headDim + " got input " + Arrays.toString(x.shape()));
        }
        INDArray[] cs = cosSin(offset, x.size(-2), x.value().dataType());
        return Ops.rotary(x, cs[0], cs[1]);
    }

    @Override
    public String toString() {
        return "RotaryEmbedding(dim=" + headDim + ", theta=" + theta + (linearScale != 1.0 ? ", linear x" + linearScale : "") + ")";
    }
}
