package org.peft4j.benchmarks.jmh;

import org.nd4j.linalg.api.ndarray.INDArray;
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
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.lora.LoraLinear;

import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A 384→384 projection on {@code [16, 128, 384]} as a plain frozen {@code Linear}, as a
 * {@code LoraLinear} with an unmerged r = 8 adapter, and with that adapter merged into the
 * weight: inference forward, and a training forward + backward (adapter trainable, base frozen).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g", "-XX:+UseParallelGC", "-Dorg.bytedeco.javacpp.maxbytes=4g"})
public class LoraLinearBenchmark {
    @Param({"plain", "lora-unmerged", "lora-merged"})
    public String variant;

    private UnaryModule layer;
    private INDArray x;
    private INDArray seed;

    @Setup
    public void setup() {
        Linear base = new Linear(Shapes.randn(1, 0.05, 384, 384), Shapes.randn(2, 0.05, 384), false);
        base.freeze();
        Module m = base;
        if (!variant.equals("plain")) {
            LoraLinear lora = new LoraLinear(base);
            lora.addAdapter("default", 8, 16, 0.0, false, false, "gaussian", new Rng(3), null, false);
            lora.setActiveAdapters(List.of("default"));
            if (variant.equals("lora-merged")) {
                lora.merge(List.of("default"));
            }
            m = lora;
        }
        layer = (UnaryModule) m;
        x = Shapes.randn(4, 1.0, Shapes.B, Shapes.T, 384);
        seed = Shapes.randn(5, 1.0, Shapes.B, Shapes.T, 384);
    }

    @Benchmark
    public Object inference() {
        try (NoGrad ignored = NoGrad.enter()) {
            return layer.forward(Tensor.constant(x)).value();
        }
    }

    @Benchmark
    public Object trainingStep() {
        Tensor xv = Tensor.variable(x);
        Tensor y = layer.forward(xv);
        y.backward(seed);
        ((Module) layer).parameters().forEach(p -> p.zeroGrad());
        return xv.grad();
    }
}
