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
import org.peft4j.core.tensor.Tensor;

import java.util.concurrent.TimeUnit;

/**
 * {@code Linear} forward + backward on {@code [16, 128, in]} with a frozen weight (no
 * weight-gradient GEMM: what every frozen projection costs under LoRA) against a trainable one
 * (full fine-tuning), for MiniLM's two projection shapes.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g", "-XX:+UseParallelGC", "-Dorg.bytedeco.javacpp.maxbytes=4g"})
public class LinearBenchmark {
    @Param({"384x384", "384x1536"})
    public String shape;

    @Param({"frozen", "trainable"})
    public String weight;

    private Linear linear;
    private INDArray x;
    private INDArray seed;

    @Setup
    public void setup() {
        String[] io = shape.split("x");
        int in = Integer.parseInt(io[0]);
        int out = Integer.parseInt(io[1]);
        linear = new Linear(Shapes.randn(1, 0.05, out, in), Shapes.randn(2, 0.05, out), false);
        if (weight.equals("frozen")) {
            linear.freeze();
        }
        x = Shapes.randn(3, 1.0, Shapes.B, Shapes.T, in);
        seed = Shapes.randn(4, 1.0, Shapes.B, Shapes.T, out);
    }

    @Benchmark
    public Object forwardBackward() {
        Tensor xv = Tensor.variable(x);   // the input needs a gradient, as inside a network
        Tensor y = linear.forward(xv);
        y.backward(seed);
        linear.weight().zeroGrad();
        if (linear.bias() != null) {
            linear.bias().zeroGrad();
        }
        return xv.grad();
    }

    @Benchmark
    public Object forward() {
        return linear.forward(Tensor.constant(x)).value();
    }
}
