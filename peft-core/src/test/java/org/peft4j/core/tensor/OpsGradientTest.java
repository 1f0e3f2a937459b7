package org.peft4j.core.tensor;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;
import org.peft4j.core.tensor.Ops.Reduction;

/**
 * A numerical gradient check (double precision, central differences, abs 1e-6 + rel 1e-4; see
 * {@link GradCheck}) for every op and overload in {@link Ops}, including broadcasting,
 * non-contiguous (permuted / transposed / sliced view) inputs, all matmul transpose flags and
 * batched ranks, and every loss reduction.
 */
class OpsGradientTest {

    private final Rng rng = new Rng(20240601L);

    private INDArray rnd(long... shape) {
        return GradCheck.random(rng, shape);
    }

    /** Strictly positive values in [0.5, ~3.5) (for log, sqrt, div denominators, fractional powers). */
    private INDArray pos(long... shape) {
        return Transforms.abs(rnd(shape), false).addi(0.5);
    }

    private static void check(String name, GradCheck.Fn fn, INDArray... in) {
        GradCheck.of(name, fn, in).check();
    }

    // ---- matmul ------------------------------------------------------------------------

    @ParameterizedTest(name = "2-D transA={0} transB={1}")
    @CsvSource({"false,false", "true,false", "false,true", "true,true"})
    void matmul2d(boolean tA, boolean tB) {
        INDArray a = tA ? rnd(4, 3) : rnd(3, 4);
        INDArray b = tB ? rnd(5, 4) : rnd(4, 5);
        check("matmul2d " + tA + tB, in -> Ops.matmul(in[0], in[1], tA, tB), a, b);
    }

    @ParameterizedTest(name = "rank-3 transA={0} transB={1}")
    @CsvSource({"false,false", "true,false", "false,true", "true,true"})
    void matmulRank3(boolean tA, boolean tB) {
        INDArray a = tA ? rnd(2, 4, 3) : rnd(2, 3, 4);
        INDArray b = tB ? rnd(2, 5, 4) : rnd(2, 4, 5);
        check("matmul3 " + tA + tB, in -> Ops.matmul(in[0], in[1], tA, tB), a, b);
    }

    @ParameterizedTest(name = "rank-4 transA={0} transB={1}")
    @CsvSource({"false,false", "true,false", "false,true", "true,true"})
    void matmulRank4(boolean tA, boolean tB) {
        INDArray a = tA ? rnd(2, 3, 4, 3) : rnd(2, 3, 3, 4);
        INDArray b = tB ? rnd(2, 3, 2, 4) : rnd(2, 3, 4, 2);
        check("matmul4 " + tA + tB, in -> Ops.matmul(in[0], in[1], tA, tB), a, b);
    }

    @ParameterizedTest(name = "batched a rank {2}, shared 2-D b, transA={0} transB={1}")
    @CsvSource({"false,false,3", "true,false,3", "false,true,3", "true,true,3", "false,true,4", "true,false,4"})
    void matmulBatchedWithSharedMatrix(boolean tA, boolean tB, int rank) {
        INDArray a = rank == 3 ? (tA ? rnd(2, 4, 3) : rnd(2, 3, 4)) : (tA ? rnd(2, 2, 4, 3) : rnd(2, 2, 3, 4));
        INDArray b = tB ? rnd(5, 4) : rnd(4, 5);
        check("matmul shared b " + tA + tB + rank, in -> Ops.matmul(in[0], in[1], tA, tB), a, b);
    }

    @Test
    void matmulTwoArgOverload() {
        check("matmul(a,b)", in -> Ops.matmul(in[0], in[1]), rnd(3, 4), rnd(4, 2));
        check("matmul(a,b) rank3", in -> Ops.matmul(in[0], in[1]), rnd(2, 3, 4), rnd(2, 4, 2));
    }

    @Test
    void matmulNonContiguousInputs() {
        // transposed 2-D views, used with and without flags
        check("matmul view 2d", in -> Ops.matmul(in[0], in[1]), rnd(4, 3).transpose(), rnd(5, 4).transpose());
        check("matmul view 2d flags", in -> Ops.matmul(in[0], in[1], true, true), rnd(3, 4).transpose(), rnd(4, 5).transpose());
        // attention-style permuted heads: [B,T,H,D] → [B,H,T,D]
        INDArray q = rnd(2, 3, 2, 4).permute(0, 2, 1, 3);
        INDArray k = rnd(2, 3, 2, 4).permute(0, 2, 1, 3);
        check("matmul permuted rank4 q·kᵀ", in -> Ops.matmul(in[0], in[1], false, true), q, k);
        // rank-3 permuted view a, shared b
        check("matmul permuted rank3 shared b", in -> Ops.matmul(in[0], in[1]), rnd(3, 2, 4).permute(1, 0, 2), rnd(4, 2));
        // a sliced (offset, strided) view
        INDArray big = rnd(6, 5);
        check("matmul sliced view", in -> Ops.matmul(in[0], in[1]),
                big.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(1, 4), org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 2, 5)),
                rnd(3, 2));
    }

    @Test
    void matmulWithOneConstantOperand() {
        GradCheck.of("matmul const b", in -> Ops.matmul(in[0], in[1]), rnd(3, 4), rnd(4, 2))
                .requiresGrad(true, false).check();
        GradCheck.of("matmul const a", in -> Ops.matmul(in[0], in[1], false, true), rnd(2, 3, 4), rnd(2, 5, 4))
                .requiresGrad(false, true).check();
    }

    // ---- linear ---------------------------------------------------------------------------

    @Test
    void linearWithBias() {
        check("linear 2d", in -> Ops.linear(in[0], in[1], in[2]), rnd(3, 4), rnd(5, 4), rnd(5));
        check("linear 3d", in -> Ops.linear(in[0], in[1], in[2]), rnd(2, 3, 4), rnd(5, 4), rnd(5));
        check("linear 1d", in -> Ops.linear(in[0], in[1], in[2]), rnd(4), rnd(5, 4), rnd(5));
    }

    @Test
    void linearWithoutBias() {
        check("linear no bias", in -> Ops.linear(in[0], in[1], null), rnd(2, 3, 4), rnd(5, 4));
    }

    @Test
    void linearNonContiguousInputAndWeight() {
        check("linear permuted x", in -> Ops.linear(in[0], in[1], in[2]), rnd(3, 2, 4).permute(1, 0, 2), rnd(5, 4), rnd(5));
        check("linear transposed weight view", in -> Ops.linear(in[0], in[1], in[2]), rnd(3, 4), rnd(4, 5).transpose(), rnd(5));
    }

    @Test
    void linearFrozenWeightAndBias() {
        GradCheck.of("linear frozen W,b", in -> Ops.linear(in[0], in[1], in[2]), rnd(2, 3, 4), rnd(5, 4), rnd(5))
                .requiresGrad(true, false, false).check();
        GradCheck.of("linear frozen x", in -> Ops.linear(in[0], in[1], in[2]), rnd(2, 3, 4), rnd(5, 4), rnd(5))
                .requiresGrad(false, true, true).check();
    }

    // ---- element-wise with broadcasting ------------------------------------------------

    private static final String[] BINARY = {"add", "sub", "mul", "div"};

    private static Tensor binary(String op, Tensor a, Tensor b) {
        return switch (op) {
            case "add" -> Ops.add(a, b);
            case "sub" -> Ops.sub(a, b);
            case "mul" -> Ops.mul(a, b);
            case "div" -> Ops.div(a, b);
            default -> throw new IllegalArgumentException(op);
        };
    }

    private void binaryCase(String op, long[] sa, long[] sb) {
        INDArray a = rnd(sa);
        INDArray b = op.equals("div") ? pos(sb) : rnd(sb);
        check(op + " " + java.util.Arrays.toString(sa) + " " + java.util.Arrays.toString(sb),
                in -> binary(op, in[0], in[1]), a, b);
    }

    @Test
    void binarySameShape() {
        for (String op : BINARY) binaryCase(op, new long[]{2, 3}, new long[]{2, 3});
    }

    @Test
    void binaryBroadcastTrailingVector() {
        // [2,3,4] op [4]
        for (String op : BINARY) binaryCase(op, new long[]{2, 3, 4}, new long[]{4});
    }

    @Test
    void binaryBroadcastBothSides() {
        // [2,1,4] op [3,1] → [2,3,4]
        for (String op : BINARY) binaryCase(op, new long[]{2, 1, 4}, new long[]{3, 1});
    }

    @Test
    void binaryBroadcastLeftSmallerRank() {
        // [4] op [2,3,4] and [3,1] op [1,4]
        for (String op : BINARY) {
            binaryCase(op, new long[]{4}, new long[]{2, 3, 4});
            binaryCase(op, new long[]{3, 1}, new long[]{1, 4});
        }
    }

    @Test
    void binaryWithScalarShapedOperand() {
        for (String op : BINARY) {
            binaryCase(op, new long[]{2, 3}, new long[]{1});
            binaryCase(op, new long[]{2, 3}, new long[]{1, 1});
        }
    }

    @Test
    void binaryNonContiguous() {
        for (String op : BINARY) {
            INDArray a = rnd(4, 2, 3).permute(1, 2, 0);                  // [2,3,4] view
            INDArray b = op.equals("div") ? pos(3, 2).transpose() : rnd(3, 2).transpose();   // [2,3] view
            check(op + " permuted+transposed", in -> binary(op, in[0], Ops.reshape(in[1], 2, 3, 1)), a, b);
            INDArray c = op.equals("div") ? pos(4, 3).transpose() : rnd(4, 3).transpose();   // [3,4] view
            check(op + " permuted op transposed", in -> binary(op, in[0], in[1]), a.dup(), c);
        }
    }

    @Test
    void binarySameTensorTwice() {
        check("mul x·x", in -> Ops.mul(in[0], in[0]), rnd(3, 4));
        check("sub x−x", in -> Ops.add(Ops.sub(in[0], in[0]), Ops.mul(in[0], 0.5)), rnd(3, 4));
        check("div x/x·x", in -> Ops.mul(Ops.div(in[0], in[0]), in[0]), pos(3, 4));
    }

    // ---- scalar and unary ---------------------------------------------------------------

    @Test
    void scalarAddAndMul() {
        check("add scalar", in -> Ops.add(in[0], 2.5), rnd(3, 4));
        check("mul scalar", in -> Ops.mul(in[0], -1.75), rnd(3, 4));
        check("mul scalar permuted", in -> Ops.mul(in[0], 3.0), rnd(3, 4, 2).permute(2, 0, 1));
    }

    @Test
    void powVariousExponents() {
        check("pow 2", in -> Ops.pow(in[0], 2.0), rnd(3, 4));
        check("pow 3", in -> Ops.pow(in[0], 3.0), rnd(3, 4));
        check("pow 0.5", in -> Ops.pow(in[0], 0.5), pos(3, 4));
        check("pow -1.5", in -> Ops.pow(in[0], -1.5), pos(3, 4));
        check("pow 2 transposed", in -> Ops.pow(in[0], 2.0), rnd(4, 3).transpose());
    }

    @Test
    void negExpLogSqrt() {
        check("neg", in -> Ops.neg(in[0]), rnd(3, 4));
        check("exp", in -> Ops.exp(in[0]), rnd(3, 4));
        check("log", in -> Ops.log(in[0]), pos(3, 4));
        check("sqrt", in -> Ops.sqrt(in[0]), pos(3, 4));
        check("exp permuted", in -> Ops.exp(in[0]), rnd(2, 3, 4).permute(2, 1, 0));
        check("log transposed", in -> Ops.log(in[0]), pos(4, 3).transpose());
    }

    // ---- reductions ----------------------------------------------------------------------

    @Test
    void sumAll() {
        check("sum all", in -> Ops.sum(in[0]), rnd(2, 3, 4));
        check("sum all permuted", in -> Ops.sum(in[0]), rnd(2, 3, 4).permute(1, 2, 0));
    }

    @Test
    void sumAxes() {
        for (boolean keep : new boolean[]{true, false}) {
            check("sum axis1 keep=" + keep, in -> Ops.sum(in[0], keep, 1), rnd(2, 3, 4));
            check("sum axis-1 keep=" + keep, in -> Ops.sum(in[0], keep, -1), rnd(2, 3, 4));
            check("sum axes0,2 keep=" + keep, in -> Ops.sum(in[0], keep, 0, 2), rnd(2, 3, 4));
            check("sum no axes keep=" + keep, in -> Ops.sum(in[0], keep), rnd(2, 3));
            check("sum permuted keep=" + keep, in -> Ops.sum(in[0], keep, 0), rnd(3, 4, 2).permute(2, 0, 1));
        }
    }

    @Test
    void meanAll() {
        check("mean all", in -> Ops.mean(in[0]), rnd(2, 3, 4));
        check("mean all transposed", in -> Ops.mean(in[0]), rnd(4, 3).transpose());
    }

    @Test
    void meanAxes() {
        for (boolean keep : new boolean[]{true, false}) {
            check("mean axis0 keep=" + keep, in -> Ops.mean(in[0], keep, 0), rnd(2, 3, 4));
            check("mean axes-1,-2 keep=" + keep, in -> Ops.mean(in[0], keep, -1, -2), rnd(2, 3, 4));
            check("mean no axes keep=" + keep, in -> Ops.mean(in[0], keep), rnd(2, 3));
            check("mean permuted keep=" + keep, in -> Ops.mean(in[0], keep, 2), rnd(3, 4, 2).permute(2, 0, 1));
        }
    }

    // ---- shape ---------------------------------------------------------------------------

    @Test
    void reshape() {
        check("reshape", in -> Ops.reshape(in[0], 4, 6), rnd(2, 3, 4));
        check("reshape -1", in -> Ops.reshape(in[0], -1, 2), rnd(2, 3, 4));
        // non-contiguous input must be copied in c order, not reinterpreted
        check("reshape permuted", in -> Ops.mul(Ops.reshape(in[0], 3, 8), in[1]), rnd(2, 3, 4).permute(1, 0, 2), rnd(3, 8));
        check("reshape transposed", in -> Ops.mul(Ops.reshape(in[0], 12), in[1]), rnd(4, 3).transpose(), rnd(12));
    }

    @Test
    void permuteAndTranspose() {
        check("permute", in -> Ops.mul(Ops.permute(in[0], 2, 0, 1), in[1]), rnd(2, 3, 4), rnd(4, 2, 3));
        check("permute negative axes", in -> Ops.mul(Ops.permute(in[0], -1, 0, 1), in[1]), rnd(2, 3, 4), rnd(4, 2, 3));
        check("transpose", in -> Ops.mul(Ops.transpose(in[0], 0, 2), in[1]), rnd(2, 3, 4), rnd(4, 3, 2));
        check("transpose -1,-2", in -> Ops.mul(Ops.transpose(in[0], -1, -2), in[1]), rnd(2, 3, 4), rnd(2, 4, 3));
        check("permute of permuted", in -> Ops.mul(Ops.permute(in[0], 1, 0, 2), in[1]), rnd(2, 3, 4).permute(2, 0, 1), rnd(2, 4, 3));
    }

    @Test
    void slice() {
        check("slice axis0", in -> Ops.mul(Ops.slice(in[0], 0, 1, 3), in[1]), rnd(4, 3), rnd(2, 3));
        check("slice axis1", in -> Ops.mul(Ops.slice(in[0], 1, 1, 3), in[1]), rnd(2, 4, 3), rnd(2, 2, 3));
        check("slice axis-1", in -> Ops.mul(Ops.slice(in[0], -1, 0, 2), in[1]), rnd(2, 4, 3), rnd(2, 4, 2));
        check("slice permuted", in -> Ops.mul(Ops.slice(in[0], 2, 1, 2), in[1]), rnd(2, 3, 4).permute(1, 2, 0), rnd(3, 4, 1));
        check("slice twice same tensor", in -> Ops.add(Ops.slice(in[0], 1, 0, 2), Ops.slice(in[0], 1, 1, 3)), rnd(2, 3));
    }

    @Test
    void concat() {
        check("concat axis0", in -> Ops.concat(0, in[0], in[1]), rnd(2, 3), rnd(1, 3));
        check("concat axis1 three", in -> Ops.concat(1, in[0], in[1], in[2]), rnd(2, 1, 3), rnd(2, 2, 3), rnd(2, 3, 3));
        check("concat axis-1 with views", in -> Ops.concat(-1, in[0], in[1]), rnd(3, 2).transpose(), rnd(2, 4, 2).permute(1, 0, 2).get(
                org.nd4j.linalg.indexing.NDArrayIndex.point(0), org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.all()));
        check("concat same tensor twice", in -> Ops.concat(0, in[0], in[0]), rnd(2, 3));
        check("concat single", in -> Ops.concat(1, in[0]), rnd(2, 3));
        GradCheck.of("concat with constant part", in -> Ops.concat(1, in[0], in[1]), rnd(2, 2), rnd(2, 3))
                .requiresGrad(false, true).check();
    }

    @Test
    void indexSelect() {
        INDArray rep = Nd4j.createFromArray(2, 0, 2, 2);                 // repeated indices add up
        check("indexSelect axis0", in -> Ops.indexSelect(in[0], 0, rep), rnd(3, 4));
        check("indexSelect axis1", in -> Ops.indexSelect(in[0], 1, rep), rnd(2, 3, 2));
        check("indexSelect axis-1", in -> Ops.indexSelect(in[0], -1, Nd4j.createFromArray(1L, 1L)), rnd(2, 3, 4));
        check("indexSelect float indices", in -> Ops.indexSelect(in[0], 1, Nd4j.createFromArray(3f, 0f, 3f)), rnd(2, 4));
        check("indexSelect permuted", in -> Ops.indexSelect(in[0], 2, rep), rnd(3, 2, 2).permute(1, 2, 0));
    }

    @Test
    void embedding() {
        INDArray ids2d = Nd4j.createFromArray(new int[][]{{1, 4, 1}, {0, 4, 4}});
        check("embedding int ids 2d", in -> Ops.embedding(in[0], ids2d), rnd(5, 3));
        check("embedding long ids 1d", in -> Ops.embedding(in[0], Nd4j.createFromArray(3L, 3L, 0L)), rnd(5, 3));
        check("embedding float ids", in -> Ops.embedding(in[0], Nd4j.createFromArray(new float[][]{{2f, 2f}})), rnd(5, 3));
        check("embedding double ids 3d", in -> Ops.embedding(in[0], Nd4j.createFromArray(new double[]{1, 2, 1, 0}).reshape(2, 1, 2)), rnd(5, 3));
    }

    @Test
    void maskedFill() {
        INDArray rowMask = Nd4j.createFromArray(new double[]{0, 1, 0, 1}).reshape(1, 4);
        check("maskedFill broadcast row", in -> Ops.maskedFill(in[0], rowMask, -7.0), rnd(3, 4));
        INDArray full = Nd4j.createFromArray(new float[][]{{1, 0, 0}, {0, 0, 1}});
        check("maskedFill full float mask", in -> Ops.maskedFill(in[0], full, 0.0), rnd(2, 3));
        INDArray bool = Nd4j.createFromArray(new boolean[][]{{true}, {false}});
        // (a huge fill value would swamp the central difference in round-off; softmax case below uses -1e9)
        check("maskedFill boolean column mask", in -> Ops.maskedFill(in[0], bool, 5.0), rnd(2, 5));
        INDArray causal = Nd4j.createFromArray(new double[][]{{0, 1, 1}, {0, 0, 1}, {0, 0, 0}});
        check("maskedFill causal on permuted scores", in -> Ops.softmax(Ops.maskedFill(in[0], causal, -1e9)),
                rnd(3, 2, 3).permute(1, 0, 2));
    }

    // ---- normalisation and softmax ---------------------------------------------------------

    @Test
    void softmax() {
        check("softmax 1d", in -> Ops.softmax(in[0]), rnd(5));
        check("softmax 2d", in -> Ops.softmax(in[0]), rnd(3, 5));
        check("softmax 4d", in -> Ops.softmax(in[0]), rnd(2, 2, 3, 4));
        check("softmax transposed", in -> Ops.softmax(in[0]), rnd(5, 3).transpose());
        check("softmax permuted", in -> Ops.softmax(in[0]), rnd(2, 3, 4).permute(2, 0, 1));
        // a fully masked row (all -1e9 after the fill): finite, uniform, and no gradient to the masked scores
        INDArray rowMask = Nd4j.createFromArray(new double[][]{{1, 1, 1, 1}, {0, 1, 0, 0}, {0, 0, 0, 0}});
        check("softmax with a fully masked row", in -> Ops.softmax(Ops.maskedFill(in[0], rowMask, -1e9)), rnd(3, 4));
    }

    @Test
    void logSoftmax() {
        check("logSoftmax 1d", in -> Ops.logSoftmax(in[0]), rnd(5));
        check("logSoftmax 3d", in -> Ops.logSoftmax(in[0]), rnd(2, 3, 5));
        check("logSoftmax transposed", in -> Ops.logSoftmax(in[0]), rnd(5, 3).transpose());
    }

    @Test
    void layerNorm() {
        check("layerNorm gamma beta", in -> Ops.layerNorm(in[0], in[1], in[2], 1e-5), rnd(2, 3, 6), rnd(6), rnd(6));
        check("layerNorm gamma only", in -> Ops.layerNorm(in[0], in[1], null, 1e-5), rnd(3, 6), rnd(6));
        check("layerNorm beta only", in -> Ops.layerNorm(in[0], null, in[1], 1e-5), rnd(3, 6), rnd(6));
        check("layerNorm none", in -> Ops.layerNorm(in[0], null, null, 1e-5), rnd(3, 6));
        check("layerNorm 1d", in -> Ops.layerNorm(in[0], in[1], in[2], 1e-5), rnd(6), rnd(6), rnd(6));
        check("layerNorm permuted", in -> Ops.layerNorm(in[0], in[1], in[2], 1e-5), rnd(6, 2, 3).permute(1, 2, 0), rnd(6), rnd(6));
        GradCheck.of("layerNorm frozen affine", in -> Ops.layerNorm(in[0], in[1], in[2], 1e-5), rnd(3, 6), rnd(6), rnd(6))
                .requiresGrad(true, false, false).check();
    }

    @Test
    void rmsNorm() {
        check("rmsNorm gamma", in -> Ops.rmsNorm(in[0], in[1], 1e-6), rnd(2, 3, 6), rnd(6));
        check("rmsNorm no gamma", in -> Ops.rmsNorm(in[0], null, 1e-6), rnd(3, 6));
        check("rmsNorm transposed", in -> Ops.rmsNorm(in[0], in[1], 1e-6), rnd(6, 3).transpose(), rnd(6));
        GradCheck.of("rmsNorm frozen gamma", in -> Ops.rmsNorm(in[0], in[1], 1e-6), rnd(3, 6), rnd(6))
                .requiresGrad(true, false).check();
    }

    // ---- activations -------------------------------------------------------------------------

    @Test
    void activations() {
        INDArray x = rnd(3, 5).muli(2.0);
        check("gelu", in -> Ops.gelu(in[0]), x.dup());
        check("geluTanh", in -> Ops.geluTanh(in[0]), x.dup());
        check("silu", in -> Ops.silu(in[0]), x.dup());
        check("relu", in -> Ops.relu(in[0]), x.dup());
        check("tanh", in -> Ops.tanh(in[0]), x.dup());
        check("sigmoid", in -> Ops.sigmoid(in[0]), x.dup());
    }

    @Test
    void activationsNonContiguous() {
        check("gelu permuted", in -> Ops.gelu(in[0]), rnd(2, 3, 4).permute(2, 0, 1));
        check("geluTanh transposed", in -> Ops.geluTanh(in[0]), rnd(4, 3).transpose());
        check("silu transposed", in -> Ops.silu(in[0]), rnd(4, 3).transpose());
        check("relu transposed", in -> Ops.relu(in[0]), rnd(4, 3).transpose());
        check("tanh permuted", in -> Ops.tanh(in[0]), rnd(2, 3, 4).permute(1, 2, 0));
        check("sigmoid permuted", in -> Ops.sigmoid(in[0]), rnd(2, 3, 4).permute(1, 2, 0));
    }

    @Test
    void dropoutWithFixedMask() {
        // a fresh Rng with the same seed in every evaluation gives the same mask
        check("dropout p=0.3", in -> Ops.dropout(in[0], 0.3, true, new Rng(42)), rnd(4, 5));
        check("dropout permuted", in -> Ops.dropout(in[0], 0.5, true, new Rng(43)), rnd(4, 5).transpose());
        check("dropout eval", in -> Ops.dropout(in[0], 0.3, false, new Rng(42)), rnd(4, 5));
        check("dropout p=0", in -> Ops.dropout(in[0], 0.0, true, new Rng(42)), rnd(4, 5));
    }

    @Test
    void rotary() {
        INDArray cos = rnd(5, 4);
        INDArray sin = rnd(5, 4);
        check("rotary 4d", in -> Ops.rotary(in[0], cos, sin), rnd(2, 3, 5, 4));
        check("rotary 2d", in -> Ops.rotary(in[0], cos, sin), rnd(5, 4));
        // attention layout: [B,T,H,D] viewed as [B,H,T,D]
        check("rotary permuted", in -> Ops.rotary(in[0], cos, sin), rnd(2, 5, 3, 4).permute(0, 2, 1, 3));
        check("rotary float cos/sin", in -> Ops.rotary(in[0], cos.castTo(DataType.FLOAT), sin.castTo(DataType.FLOAT)), rnd(3, 5, 4));
        // cached tables sliced at a position offset (row-interval views), as RotaryEmbedding passes them
        INDArray cosTable = rnd(9, 4);
        INDArray sinTable = rnd(9, 4);
        INDArray cosView = cosTable.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(3, 8), org.nd4j.linalg.indexing.NDArrayIndex.all());
        INDArray sinView = sinTable.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(3, 8), org.nd4j.linalg.indexing.NDArrayIndex.all());
        check("rotary offset table views", in -> Ops.rotary(in[0], cosView, sinView), rnd(2, 3, 5, 4));
    }

    // ---- losses --------------------------------------------------------------------------------

    @ParameterizedTest
    @EnumSource(Reduction.class)
    void crossEntropy(Reduction red) {
        INDArray t2 = Nd4j.createFromArray(new int[][]{{0, -100, 3}, {2, 1, -100}});
        check("crossEntropy 3d " + red, in -> Ops.crossEntropy(in[0], t2, red), rnd(2, 3, 4));
        INDArray t1 = Nd4j.createFromArray(3L, 0L, 3L);
        check("crossEntropy 2d long " + red, in -> Ops.crossEntropy(in[0], t1, red), rnd(3, 5));
        INDArray tf = Nd4j.createFromArray(1f, -100f, 0f);
        check("crossEntropy float targets transposed logits " + red, in -> Ops.crossEntropy(in[0], tf, red), rnd(4, 3).transpose());
        check("crossEntropy 1d logits " + red, in -> Ops.crossEntropy(in[0], Nd4j.scalar(2L), red), rnd(4));
    }

    @ParameterizedTest
    @EnumSource(Reduction.class)
    void mse(Reduction red) {
        check("mse " + red, in -> Ops.mse(in[0], in[1], red), rnd(2, 3, 4), rnd(2, 3, 4));
        check("mse views " + red, in -> Ops.mse(in[0], in[1], red), rnd(4, 3).transpose(), rnd(3, 4));
        GradCheck.of("mse constant target " + red, in -> Ops.mse(in[0], in[1], red), rnd(3, 4), rnd(3, 4))
                .requiresGrad(true, false).check();
    }

    @Test
    void klDivergence() {
        check("kl T=1", in -> Ops.klDivergence(in[0], in[1], 1.0), rnd(3, 5), rnd(3, 5));
        check("kl T=2 3d", in -> Ops.klDivergence(in[0], in[1], 2.0), rnd(2, 3, 5), rnd(2, 3, 5));
        check("kl T=4 1d", in -> Ops.klDivergence(in[0], in[1], 4.0), rnd(5), rnd(5));
        check("kl views", in -> Ops.klDivergence(in[0], in[1], 1.5), rnd(5, 3).transpose(), rnd(3, 5));
        GradCheck.of("kl frozen teacher", in -> Ops.klDivergence(in[0], in[1], 2.0), rnd(3, 5), rnd(3, 5))
                .requiresGrad(true, false).check();
    }

    @Test
    void cosineSimilarity() {
        check("cosine axis1", in -> Ops.cosineSimilarity(in[0], in[1], 1, 1e-8), rnd(3, 5), rnd(3, 5));
        check("cosine axis-1 3d", in -> Ops.cosineSimilarity(in[0], in[1], -1, 1e-8), rnd(2, 3, 4), rnd(2, 3, 4));
        check("cosine axis0", in -> Ops.cosineSimilarity(in[0], in[1], 0, 1e-8), rnd(4, 3), rnd(4, 3));
        check("cosine broadcast b", in -> Ops.cosineSimilarity(in[0], in[1], 1, 1e-8), rnd(3, 5), rnd(1, 5));
        check("cosine views", in -> Ops.cosineSimilarity(in[0], in[1], 1, 1e-8), rnd(5, 3).transpose(), rnd(3, 5));
        // clamped branch: ‖a‖ < eps, so the a-norm is the constant eps (perturbations keep it below eps)
        INDArray small = rnd(2, 4).muli(0.01);
        check("cosine clamped norm", in -> Ops.cosineSimilarity(in[0], in[1], 1, 1.0), small, rnd(2, 4));
    }
}
