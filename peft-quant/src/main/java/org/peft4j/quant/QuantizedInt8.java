package org.peft4j.quant;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * An LLM.int8-style weight {@code [out, in]}: row-wise absmax int8 codes, as bitsandbytes'
 * {@code int8_vectorwise_quant} computes them, with optional outlier columns kept in float32.
 *
 * <p>Quantization: with a threshold &gt; 0, elements with {@code |w| >= threshold} are outliers and
 * their columns are the outlier columns; the outlier elements are zeroed before the row
 * statistics. {@code SCB[r] = max |w|} over row r (float32);
 * {@code q = round_half_even(w · ((1 / SCB[r]) · 127))} (torch evaluates {@code 127.0 / t} as
 * {@code t.reciprocal() * 127.0}), then the outlier columns are zeroed in {@code q}. bitsandbytes
 * handles those columns at matmul time from the activations; for a weight-only format peft4j keeps
 * their original float32 values. A row of zeros gets {@code SCB = 0} and codes 0.
 *
 * <p>Dequantization: {@code q · SCB[r] · (1/127)} (float32 each step), outlier columns restored.
 *
 * <p>Saved like bitsandbytes' {@code Int8Params} / {@code Linear8bitLt}: {@code weight} (I8
 * {@code [out, in]}), {@code SCB} (F32 {@code [out]}), {@code weight_format} (U8 scalar, 0 =
 * row-major); peft4j adds {@code weight.outlier_cols} (I64 {@code [k]}) and
 * {@code weight.outlier_values} (F32 {@code [out, k]}) when there are outlier columns.
 */
public final class QuantizedInt8 implements QuantizedTensor {
    /** bitsandbytes' {@code 1/127} constant of {@code int8_vectorwise_dequant}. */
    static final float INV127 = 7.874015718698502e-3f;

    private final int rows;
    private final int cols;
    private final byte[] codes;
    private final float[] scb;
    private final int[] outlierCols;
    /** {@code [rows, outlierCols.length]} row-major. */
    private final float[] outlierValues;
    private final float threshold;

    private QuantizedInt8(int rows, int cols, byte[] codes, float[] scb, int[] outlierCols, float[] outlierValues,
                          float threshold) {
        this.rows = rows;
        this.cols = cols;
        this.codes = codes;
        this.scb = scb;
        this.outlierCols = outlierCols;
        this.outlierValues = outlierValues;
        this.threshold = threshold;
    }

    /**
     * Quantizes the row-major {@code [rows, cols]} weight {@code w}; {@code threshold <= 0} means no
     * outlier handling (bitsandbytes' default for the weights is 6.0 at inference).
     */
    public static QuantizedInt8 quantize(float[] w, int rows, int cols, float threshold) {
        if (rows <= 0 || cols <= 0 || (long) rows * cols != w.length) {
            throw new IllegalArgumentException("cannot quantize " + w.length + " values as [" + rows + ", " + cols + "]");
        }
        if (Float.isNaN(threshold)) {
            throw new IllegalArgumentException("int8 outlier threshold must be a number, got NaN");
        }
        boolean[] isOutlierCol = new boolean[cols];
        int nOut = 0;
        if (threshold > 0) {
            for (int r = 0; r < rows; r++) {
                int base = r * cols;
                for (int c = 0; c < cols; c++) {
                    if (Math.abs(w[base + c]) >= threshold && !isOutlierCol[c]) {
                        isOutlierCol[c] = true;
                        nOut++;
                    }
                }
            }
        }
        int[] outCols = new int[nOut];
        for (int c = 0, k = 0; c < cols; c++) {
            if (isOutlierCol[c]) {
                outCols[k++] = c;
            }
        }
        float[] scb = new float[rows];
        byte[] q = new byte[w.length];
        float[] kept = new float[rows * nOut];
        for (int r = 0; r < rows; r++) {
            int base = r * cols;
            float m = 0f;
            for (int c = 0; c < cols; c++) {
                float v = w[base + c];
                if (threshold > 0 && Math.abs(v) >= threshold) {
                    v = 0f; // outlier elements do not count towards the row statistic
                }
                m = Math.max(m, Math.abs(v));
            }
            scb[r] = m;
            float mult = (1.0f / m) * 127.0f;
            for (int c = 0; c < cols; c++) {
                float v = w[base + c];
                if (threshold > 0 && Math.abs(v) >= threshold) {
                    v = 0f;
                }
                float p = v * mult;
                q[base + c] = m == 0f || !Float.isFinite(p) ? 0 : (byte) Math.rint(p);
            }
            for (int k = 0; k < nOut; k++) {
                kept[r * nOut + k] = w[base + outCols[k]];
                if (rows > 1) {
                    q[base + outCols[k]] = 0;
                }
            }
        }
        if (rows == 1) {
            // bitsandbytes zeroes outlier columns only for more than one row; keep the float value
            // authoritative either way (dequantize restores it)
            for (int k = 0; k < nOut; k++) {
                q[outCols[k]] = 0;
            }
        }
        return new QuantizedInt8(rows, cols, q, scb, outCols, kept, threshold);
    }

    @Override
    public QuantType type() {
        return QuantType.INT8;
    }

    @Override
    public long[] shape() {
        return new long[]{rows, cols};
    }

    @Override
    public long numel() {
        return (long) rows * cols;
    }

    /** The int8 codes, row-major (a copy). */
    public byte[] codes() {
        return codes.clone();
    }

    /** The row absmax values ({@code SCB}). */
    public float[] rowScales() {
        return scb.clone();
    }

    /** The outlier columns kept in float32, ascending. */
    public int[] outlierColumns() {
        return outlierCols.clone();
    }

    /** The outlier threshold used (0 = none). */
    public float threshold() {
        return threshold;
    }

    @Override
    public void dequantize(long from, int len, float[] dst, int off) {
        long n = numel();
        if (from < 0 || len < 0 || from + len > n) {
            throw new IndexOutOfBoundsException("values [" + from + ", " + (from + len) + ") outside [0, " + n + ")");
        }
        int i = (int) from;
        int end = i + len;
        int o = off;
        while (i < end) {
            int r = i / cols;
            int rowEnd = Math.min(end, (r + 1) * cols);
            float s = scb[r];
            for (; i < rowEnd; i++) {
                dst[o++] = (codes[i] * s) * INV127;
            }
        }
        if (outlierCols.length > 0) {
            int k = outlierCols.length;
            for (int r = (int) (from / cols); r <= (end - 1) / cols; r++) {
                for (int j = 0; j < k; j++) {
                    long flat = (long) r * cols + outlierCols[j];
                    if (flat >= from && flat < end) {
                        dst[off + (int) (flat - from)] = outlierValues[r * k + j];
                    }
                }
            }
        }
    }

    @Override
    public long storageBytes() {
        return codes.length + 4L * scb.length + 4L * outlierCols.length + 4L * outlierValues.length;
    }

    @Override
    public Map<String, INDArray> toStateDict(String prefix) {
        String p = prefix.isEmpty() ? "" : prefix + ".";
        Map<String, INDArray> out = new LinkedHashMap<>();
        out.put(p + "weight", NativeArrays.int8(codes, rows, cols));
        out.put(p + "SCB", NativeArrays.float32(scb));
        out.put(p + "weight_format", NativeArrays.uint8(new byte[]{0}));
        if (outlierCols.length > 0) {
            long[] c = new long[outlierCols.length];
            for (int i = 0; i < c.length; i++) {
                c[i] = outlierCols[i];
            }
            out.put(p + "weight.outlier_cols", Nd4j.createFromArray(c));
            out.put(p + "weight.outlier_values", NativeArrays.float32(outlierValues).reshape(rows, outlierCols.length));
        }
        return out;
    }

    /**
     * Rebuilds a weight from its saved tensors, keyed by the suffix after {@code <module>.}
     * ({@code "weight"}, {@code "SCB"}, {@code "weight_format"}, {@code "weight.outlier_cols"},
     * {@code "weight.outlier_values"}).
     *
     * @throws IllegalArgumentException naming {@code where} if a piece is missing or the scales do not match the codes
     */
    static QuantizedInt8 fromStateDict(Map<String, INDArray> t, String where) {
        INDArray w = t.get("weight");
        INDArray s = t.get("SCB");
        if (w == null || s == null) {
            throw new IllegalArgumentException(where + ": an int8 weight needs both 'weight' (I8) and 'SCB' (F32)");
        }
        if (w.dataType() != DataType.INT8 || w.rank() != 2) {
            throw new IllegalArgumentException(where + ": int8 'weight' must be I8 [out, in], found " + w.dataType() + " "
                    + Arrays.toString(w.shape()));
        }
        INDArray fmt = t.get("weight_format");
        if (fmt != null && fmt.length() > 0 && fmt.getDouble(0) != 0) {
            throw new IllegalArgumentException(where + ": weight_format " + fmt.getDouble(0) + " is not supported (only 0 = row-major)");
        }
        int rows = (int) w.size(0);
        int cols = (int) w.size(1);
        float[] scb = NativeArrays.floats(s);
        if (scb.length != rows) {
            throw new IllegalArgumentException(where + ": SCB has " + scb.length + " row scales but the weight has " + rows
                    + " rows (scales do not match the codes)");
        }
        INDArray oc = t.get("weight.outlier_cols");
        INDArray ov = t.get("weight.outlier_values");
        int[] cols2 = new int[0];
        float[] vals = new float[0];
        if (oc != null || ov != null) {
            if (oc == null || ov == null) {
                throw new IllegalArgumentException(where + ": weight.outlier_cols and weight.outlier_values come together");
            }
            long[] c = oc.castTo(DataType.INT64).reshape(oc.length()).toLongVector();
            cols2 = new int[c.length];
            for (int i = 0; i < c.length; i++) {
                if (c[i] < 0 || c[i] >= cols) {
                    throw new IllegalArgumentException(where + ": outlier column " + c[i] + " outside [0, " + cols + ")");
                }
                cols2[i] = (int) c[i];
            }
            if (ov.length() != (long) rows * c.length) {
                throw new IllegalArgumentException(where + ": weight.outlier_values has " + ov.length() + " values, expected "
                        + rows + " x " + c.length);
            }
            vals = NativeArrays.floats(ov);
        }
        return new QuantizedInt8(rows, cols, NativeArrays.bytes(w), scb, cols2, vals, 0f);
    }

    @Override
    public String toString() {
        return "QuantizedInt8([" + rows + ", " + cols + "], outlier columns=" + outlierCols.length + ")";
    }
}
