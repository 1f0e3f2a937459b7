package org.peft4j.benchmarks;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The machine's fp32 GEMM rate through ND4J ({@code Nd4j.gemm} into a preallocated output): the
 * compute ceiling that training FLOP/s are compared with. Two shapes: the MiniLM feed-forward
 * product {@code [2048, 384]·[384, 1536]} and a {@code 768³} square.
 */
public final class GemmRate {
    private final INDArray a1 = Nd4j.rand(DataType.FLOAT, 2048, 384);
    private final INDArray b1 = Nd4j.rand(DataType.FLOAT, 384, 1536);
    private final INDArray c1 = Nd4j.createUninitialized(DataType.FLOAT, 2048, 1536);
    private final INDArray a2 = Nd4j.rand(DataType.FLOAT, 768, 768);
    private final INDArray b2 = Nd4j.rand(DataType.FLOAT, 768, 768);
    private final INDArray c2 = Nd4j.createUninitialized(DataType.FLOAT, 768, 768);

    /** Sustained GFLOP/s of the FFN-shaped product: {@code calls} back-to-back products, total work / total time. */
    public double ffn(int calls) {
        return sustained(a1, b1, c1, calls);
    }

    /** Sustained GFLOP/s of the 768³ product. */
    public double square(int calls) {
        return sustained(a2, b2, c2, calls);
    }

    /** Best single-call GFLOP/s of the FFN-shaped product over {@code calls} calls (an upper bound). */
    public double ffnBest(int calls) {
        return best(a1, b1, c1, calls);
    }

    private static double flops(INDArray a, INDArray b) {
        return 2.0 * a.size(0) * a.size(1) * b.size(1);
    }

    private static double sustained(INDArray a, INDArray b, INDArray c, int calls) {
        long t = System.nanoTime();
        for (int i = 0; i < calls; i++) {
            Nd4j.gemm(a, b, c, false, false, 1.0, 0.0);
        }
        return flops(a, b) * calls / (System.nanoTime() - t);
    }

    private static double best(INDArray a, INDArray b, INDArray c, int calls) {
        long bestNs = Long.MAX_VALUE;
        for (int i = 0; i < calls; i++) {
            long t = System.nanoTime();
            Nd4j.gemm(a, b, c, false, false, 1.0, 0.0);
            bestNs = Math.min(bestNs, System.nanoTime() - t);
        }
        return flops(a, b) / bestNs;
    }

    /** Prints the rates a few times: {@code GemmRate [calls]}. */
    public static void main(String[] args) {
        int calls = args.length > 0 ? Integer.parseInt(args[0]) : 20;
        GemmRate g = new GemmRate();
        g.ffn(5);
        g.square(5);
        for (int i = 0; i < 5; i++) {
            System.out.printf("ffn %.1f GFLOP/s sustained (best call %.1f), 768^3 %.1f GFLOP/s sustained%n",
                    g.ffn(calls), g.ffnBest(calls), g.square(calls));
        }
    }
}
