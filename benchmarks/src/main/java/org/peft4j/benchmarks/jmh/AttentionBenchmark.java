package org.peft4j.benchmarks.jmh;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;
import org.peft4j.core.tensor.ScaledDotProductAttention;
import org.peft4j.core.tensor.AttentionMask;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.concurrent.TimeUnit;

/**
 * The fused attention core on MiniLM's shape: q, k, v as merged projections {@code [16, 128, 384]}
 * (12 heads of 32), bidirectional with a key padding mask (the last 16 keys of every other row
 * padded), with and without attention dropout; forward only, and forward + backward.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g", "-XX:+UseParallelGC", "-Dorg.bytedeco.javacpp.maxbytes=4g"})
public class AttentionBenchmark {
    @Param({"0.0", "0.1"})
    public double dropout;

    private INDArray q;
    private INDArray k;
    private INDArray v;
    private INDArray seed;
    private AttentionMask mask;
    private Rng rng;

    @Setup
    public void setup() {
        q = Shapes.randn(1, 1.0, Shapes.B, Shapes.T, Shapes.HIDDEN);
        k = Shapes.randn(2, 1.0, Shapes.B, Shapes.T, Shapes.HIDDEN);
        v = Shapes.randn(3, 1.0, Shapes.B, Shapes.T, Shapes.HIDDEN);
        seed = Shapes.randn(4, 1.0, Shapes.B, Shapes.T, Shapes.HIDDEN);
        INDArray pad = Nd4j.ones(DataType.INT64, Shapes.B, Shapes.T);
        for (int b = 1; b < Shapes.B; b += 2) {
            for (int t = Shapes.T - 16; t < Shapes.T; t++) {
                pad.putScalar(new long[]{b, t}, 0);
            }
        }
        mask = AttentionMask.bidirectional().withKeyPadding(pad);
        rng = new Rng(5);
    }

    private Tensor attend(Tensor qt, Tensor kt, Tensor vt, boolean training) {
        return ScaledDotProductAttention.attend(ScaledDotProductAttention.Heads.merged(qt, Shapes.HEADS), ScaledDotProductAttention.Heads.merged(kt, Shapes.HEADS),
                ScaledDotProductAttention.Heads.merged(vt, Shapes.HEADS), mask, 1.0 / Math.sqrt(Shapes.HEAD_DIM), dropout, rng, training, true);
    }

    @Benchmark
    public Object forward() {
        try (NoGrad ignored = NoGrad.enter()) {
            return attend(Tensor.constant(q), Tensor.constant(k), Tensor.constant(v), false).value();
        }
    }

    @Benchmark
    public Object forwardBackward() {
        Tensor qt = Tensor.variable(q);
        Tensor kt = Tensor.variable(k);
        Tensor vt = Tensor.variable(v);
        attend(qt, kt, vt, true).backward(seed);
        return qt.grad();
    }
}
