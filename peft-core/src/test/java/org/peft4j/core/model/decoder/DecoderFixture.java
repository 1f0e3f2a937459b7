package org.peft4j.core.model.decoder;

import com.fasterxml.jackson.databind.JsonNode;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.JsonFiles;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * A PyTorch reference written by {@code scripts/reference/make_decoder_fixtures.py}: the
 * checkpoint folder plus {@code reference.safetensors} / {@code reference.json}.
 */
public final class DecoderFixture {
    public static final Path ROOT = Path.of("src/test/resources/fixtures/decoders");

    public final String name;
    public final Path dir;
    public final Map<String, INDArray> ref;
    public final JsonNode meta;

    private DecoderFixture(String name, Path dir, Map<String, INDArray> ref, JsonNode meta) {
        this.name = name;
        this.dir = dir;
        this.ref = ref;
        this.meta = meta;
    }

    public static DecoderFixture load(String name) throws IOException {
        Path dir = ROOT.resolve(name);
        return new DecoderFixture(name, dir, SafeTensors.load(dir.resolve("reference.safetensors")),
                JsonFiles.read(dir.resolve("reference.json")));
    }

    public INDArray ids() {
        return ref.get("input_ids");
    }

    public INDArray mask() {
        return ref.get("attention_mask");
    }

    public List<String> gradientNames() {
        List<String> out = new ArrayList<>();
        meta.get("gradients").forEach(n -> out.add(n.asText()));
        return out;
    }

    /** {@code sum(logits * loss_weights * mask[..., None])}, the loss whose gradients the fixture holds. */
    public Tensor loss(Tensor logits) {
        INDArray w = ref.get("loss_weights").dup();
        INDArray m = mask().castTo(DataType.FLOAT);
        long b = m.size(0);
        long t = m.size(1);
        w.muli(m.reshape(b, t, 1).broadcast(w.shape()));
        return Ops.sum(Ops.mul(logits, Tensor.constant(w)));
    }

    /** Largest |a - b| over the positions where the mask is 1 ({@code a, b [B, T, ...]}). */
    public static double maxAbsDiffMasked(INDArray a, INDArray b, INDArray mask) {
        assertArrayEquals(a.shape(), b.shape(), "shapes");
        double max = 0;
        for (int i = 0; i < mask.size(0); i++) {
            for (int j = 0; j < mask.size(1); j++) {
                if (mask.getLong(i, j) == 1) {
                    INDArray d = a.get(org.nd4j.linalg.indexing.NDArrayIndex.point(i), org.nd4j.linalg.indexing.NDArrayIndex.point(j))
                            .castTo(DataType.DOUBLE).sub(b.get(org.nd4j.linalg.indexing.NDArrayIndex.point(i),
                                    org.nd4j.linalg.indexing.NDArrayIndex.point(j)).castTo(DataType.DOUBLE));
                    max = Math.max(max, Nd4j.getExecutioner().exec(new org.nd4j.linalg.api.ops.impl.reduce.same.AMax(d)).getDouble(0));
                }
            }
        }
        return max;
    }

    public static double maxAbs(INDArray a) {
        return a.castTo(DataType.DOUBLE).amaxNumber().doubleValue();
    }

    public static double maxAbsDiff(INDArray a, INDArray b) {
        assertArrayEquals(a.shape(), b.shape(), "shapes");
        return a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    }
}
