package org.peft4j.quant;

/**
 * bitsandbytes' CPU 8-bit blockwise quantization ({@code quantize_block} in csrc/common.cpp) of
 * {@code values} with the ascending 256-value {@code map}.
 */
record Blockwise8(byte[] codes, float[] absmax) {
    static Blockwise8 quantize(float[] values, int blockSize, float[] map) {
        int n = values.length;
        int nBlocks = (n + blockSize - 1) / blockSize;
        float[] absmax = new float[nBlocks];
        byte[] codes = new byte[n];
        int zero = nearestToZero(map);
        for (int b = 0; b < nBlocks; b++) {
            int start = b * blockSize;
            int end = Math.min(n, start + blockSize);
            float m = 0f;
            for (int i = start; i < end; i++) {
                m = Math.max(m, Math.abs(values[i]));
            }
            absmax[b] = m;
            for (int i = start; i < end; i++) {
                if (m == 0f) {
                    // 0/0: undefined in bitsandbytes' kernel; the code of 0 reconstructs 0 exactly
                    codes[i] = (byte) zero;
                    continue;
                }
                float normed = values[i] / m;
                int idx = leftIndex(map, normed);
                if (idx < map.length - 1) {
                    float dl = Math.abs(normed - map[idx]);
                    float dr = Math.abs(normed - map[idx + 1]);
                    if (dr < dl) {
                        idx++;
                    }
                }
                codes[i] = (byte) idx;
            }
        }
        return new Blockwise8(codes, absmax);
    }

    /** The largest index with {@code map[i] <= v} (0 if none). */
    private static int leftIndex(float[] map, float v) {
        int lo = 0;
        int hi = map.length - 1;
        if (!(v >= map[0])) {
            return 0;
        }
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (map[mid] <= v) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        return lo;
    }

    private static int nearestToZero(float[] map) {
        int best = 0;
        for (int i = 1; i < map.length; i++) {
            if (Math.abs(map[i]) < Math.abs(map[best])) {
                best = i;
            }
        }
        return best;
    }
}
