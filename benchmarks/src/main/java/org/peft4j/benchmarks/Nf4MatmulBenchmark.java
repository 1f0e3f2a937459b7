package org.peft4j.benchmarks;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.quant.QuantConfig;
import org.peft4j.quant.QuantizedLinear;
import org.peft4j.quant.QuantizedTensor;

import java.util.concurrent.TimeUnit;

/**
 * The NF4 linear layer (dequantize the packed weight into the reusable scratch buffer, then one
 * fp32 GEMM) against the fp32 linear layer of the same shape: {@code y[tokens, out] = x[tokens, in]·Wᵀ},
 * W {@code [5632, 2048]} (a LLaMA-1B MLP projection), NF4 block 64 with double quantization; plus
 * the dequantization alone. Both layers allocate their output the same way ({@code forward} under
 * {@link NoGrad}).
 *
 * <pre>
 * mvn -B -q -o package -pl benchmarks -am -DskipTests
 * java -cp benchmarks/target/classes:$(deps) org.openjdk.jmh.Main Nf4MatmulBenchmark -wi 2 -i 3 -w 2s -r 3s -f 1
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(value = 1, jvmArgs = {"-Xmx2g", "-Dorg.bytedeco.javacpp.maxbytes=4g"})
public class Nf4MatmulBenchmark {
    @Param({"16", "128"})
    public int tokens;

    @Param({"5632"})
    public int out;

    @Param({"2048"})
    public int in;

    private Linear fp32;
    private QuantizedLinear nf4;
    private Tensor x;
    private float[] dequantized;

    @Setup(Level.Trial)
    public void setUp() {
        Nd4j.getRandom().setSeed(7);
        INDArray w = Nd4j.randn(DataType.FLOAT, out, in).muli(0.02);
        fp32 = new Linear(w, null, false);
        fp32.freeze();
        nf4 = QuantizedLinear.quantize(fp32, QuantConfig.nf4());
        x = Tensor.constant(Nd4j.randn(DataType.FLOAT, tokens, in));
        dequantized = new float[out * in];
    }

    @Benchmark
    public INDArray fp32Matmul() {
        try (NoGrad ignored = NoGrad.enter()) {
            return fp32.forward(x).value();
        }
    }

    @Benchmark
    public INDArray nf4DequantizeMatmul() {
        try (NoGrad ignored = NoGrad.enter()) {
            return nf4.forward(x).value();
        }
    }

    @Benchmark
    public float[] nf4DequantizeOnly() {
        QuantizedTensor q = nf4.quantizedWeight();
        q.dequantize(0, dequantized.length, dequantized, 0);
        return dequantized;
    }
}
