package org.peft4j.benchmarks.jmh;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;
import org.peft4j.core.tensor.FusedOps;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;

import java.util.concurrent.TimeUnit;

/**
 * Layer norm ({@code [16, 128, 384]}, and fused with the residual add), softmax over the last
 * axis ({@code [16, 12, 128, 128]}, Ops.softmax: ND4J's native op) and exact GELU
 * ({@code [16, 128, 1536]}): forward alone and forward + backward.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g", "-XX:+UseParallelGC", "-Dorg.bytedeco.javacpp.maxbytes=4g"})
public class ElementwiseBenchmark {
    private INDArray hidden;
    private INDArray residual;
    private INDArray hiddenSeed;
    private INDArray gamma;
    private INDArray beta;
    private INDArray scores;
    private INDArray scoresSeed;
    private INDArray ffn;
    private INDArray ffnSeed;

    @Setup
    public void setup() {
        hidden = Shapes.randn(1, 1.0, Shapes.B, Shapes.T, Shapes.HIDDEN);
        residual = Shapes.randn(2, 1.0, Shapes.B, Shapes.T, Shapes.HIDDEN);
        hiddenSeed = Shapes.randn(3, 1.0, Shapes.B, Shapes.T, Shapes.HIDDEN);
        gamma = Shapes.randn(4, 0.1, Shapes.HIDDEN).addi(1.0);
        beta = Shapes.randn(5, 0.1, Shapes.HIDDEN);
        scores = Shapes.randn(6, 2.0, Shapes.B, Shapes.HEADS, Shapes.T, Shapes.T);
        scoresSeed = Shapes.randn(7, 1.0, Shapes.B, Shapes.HEADS, Shapes.T, Shapes.T);
        ffn = Shapes.randn(8, 1.5, Shapes.B, Shapes.T, Shapes.FFN);
        ffnSeed = Shapes.randn(9, 1.0, Shapes.B, Shapes.T, Shapes.FFN);
    }

    @Benchmark
    public Object layerNormForward() {
        return Ops.layerNorm(Tensor.constant(hidden), Tensor.constant(gamma), Tensor.constant(beta), 1e-12).value();
    }

    @Benchmark
    public Object layerNormForwardBackward() {
        Tensor x = Tensor.variable(hidden);
        Tensor g = Tensor.variable(gamma);
        Ops.layerNorm(x, g, Tensor.variable(beta), 1e-12).backward(hiddenSeed);
        return g.grad();
    }

    @Benchmark
    public Object addLayerNormForwardBackward() {
        Tensor x = Tensor.variable(hidden);
        Tensor r = Tensor.variable(residual);
        FusedOps.addLayerNorm(x, r, Tensor.constant(gamma), Tensor.constant(beta), 1e-12).backward(hiddenSeed);
        return r.grad();
    }

    @Benchmark
    public Object softmaxForward() {
        return Ops.softmax(Tensor.constant(scores)).value();
    }

    @Benchmark
    public Object softmaxForwardBackward() {
        Tensor x = Tensor.variable(scores);
        Ops.softmax(x).backward(scoresSeed);
        return x.grad();
    }

    @Benchmark
    public Object geluForward() {
        return Ops.gelu(Tensor.constant(ffn)).value();
    }

    @Benchmark
    public Object geluForwardBackward() {
        Tensor x = Tensor.variable(ffn);
        Ops.gelu(x).backward(ffnSeed);
        return x.grad();
    }
}
