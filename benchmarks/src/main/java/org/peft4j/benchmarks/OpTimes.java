package org.peft4j.benchmarks;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;

import java.util.function.Supplier;

/** Quick per-op timings (mean of N runs after warm-up) on MiniLM-sized activations; a profiling aid. */
public final class OpTimes {
    static void time(String name, int n, Runnable r) {
        for (int i = 0; i < 3; i++) r.run();
        long t = System.nanoTime();
        for (int i = 0; i < n; i++) r.run();
        System.out.printf("%-40s %8.3f ms%n", name, (System.nanoTime() - t) / 1e6 / n);
    }

    public static void main(String[] args) {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 20;
        INDArray x = Nd4j.randn(DataType.FLOAT, 16, 128, 384);
        INDArray big = Nd4j.randn(DataType.FLOAT, 16, 128, 1536);
        INDArray gamma = Nd4j.rand(DataType.FLOAT, 384);
        INDArray beta = Nd4j.rand(DataType.FLOAT, 384);
        INDArray w = Nd4j.randn(DataType.FLOAT, 1536, 384).muli(0.05);
        INDArray bias = Nd4j.randn(DataType.FLOAT, 1536);
        time("alloc 2048x384", n, () -> Nd4j.createUninitialized(DataType.FLOAT, 16, 128, 384));
        time("alloc 2048x1536", n, () -> Nd4j.createUninitialized(DataType.FLOAT, 16, 128, 1536));
        time("alloc 16x12x128x128", n, () -> Nd4j.createUninitialized(DataType.FLOAT, 16, 12, 128, 128));
        INDArray pre = Nd4j.createUninitialized(DataType.FLOAT, 16, 128, 384);
        time("addi same shape 2048x384 (prealloc)", n, () -> pre.addi(x));
        time("add  2048x384 (alloc)", n, () -> x.add(x));
        time("layerNorm fwd", n, () -> Ops.layerNorm(Tensor.constant(x), Tensor.constant(gamma), Tensor.constant(beta), 1e-12));
        time("layerNorm fwd+bwd", n, () -> {
            Tensor xv = Tensor.variable(x);
            Tensor y = Ops.layerNorm(xv, Tensor.variable(gamma), Tensor.variable(beta), 1e-12);
            y.backward(x);
        });
        time("gelu fwd 2048x1536", n, () -> Ops.gelu(Tensor.constant(big)));
        time("gelu fwd+bwd", n, () -> {
            Tensor xv = Tensor.variable(big);
            Ops.gelu(xv).backward(big);
        });
        time("linear fwd 384->1536", n, () -> Ops.linear(Tensor.constant(x), Tensor.constant(w), Tensor.constant(bias)));
        INDArray y = Nd4j.createUninitialized(DataType.FLOAT, 2048, 1536);
        INDArray x2 = x.reshape(2048, 384);
        time("gemm only 384->1536 (prealloc)", n, () -> Nd4j.gemm(x2, w, y, false, true, 1.0, 0.0));
        time("linear fwd+bwd frozen W", n, () -> {
            Tensor xv = Tensor.variable(x);
            Ops.linear(xv, Tensor.constant(w), Tensor.constant(bias)).backward(big);
        });
        time("linear fwd+bwd trainable W", n, () -> {
            Tensor xv = Tensor.variable(x);
            Ops.linear(xv, Tensor.variable(w), Tensor.variable(bias)).backward(big);
        });
    }
}
