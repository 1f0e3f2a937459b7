package org.peft4j.core.io;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** NaN/Inf in loaded weights: a warning by default (the weights load), an error naming the tensor under the strict policy. */
class FiniteCheckTest {
    @TempDir
    Path tmp;

    @AfterEach
    void restore() {
        FiniteCheck.setPolicy(FiniteCheck.Policy.WARN);
    }

    private Path file() throws Exception {
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.put("ok", Nd4j.createFromArray(1f, 2f));
        m.put("bad", Nd4j.createFromArray(1f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY));
        m.put("half", Nd4j.createFromArray(Float.NaN).castTo(DataType.HALF));
        m.put("ids", Nd4j.createFromArray(1L, 2L));
        Path f = tmp.resolve("model.safetensors");
        SafeTensors.write(f, m);
        return f;
    }

    @Test
    void warnsByDefaultAndLoads() throws Exception {
        assertEquals(FiniteCheck.Policy.WARN, FiniteCheck.policy());
        try (CheckpointWeights w = CheckpointWeights.openFile(file())) {
            assertEquals(4, w.readAll(true).size());
            assertTrue(Float.isNaN(w.get("bad").getFloat(1)));
        }
    }

    @Test
    void strictPolicyRefusesNamingFileTensorAndCounts() throws Exception {
        Path f = file();
        FiniteCheck.setPolicy(FiniteCheck.Policy.ERROR);
        try (CheckpointWeights w = CheckpointWeights.openFile(f)) {
            assertEquals(2, w.get("ok").length());
            assertEquals(2, w.get("ids").length());   // integers cannot be NaN
            CheckpointException e = assertThrows(CheckpointException.class, () -> w.get("bad"));
            assertEquals(f + ": tensor 'bad' holds 1 NaN and 2 infinite values (of 4); non-finite weights are refused"
                    + " (strict finite check on)", e.getMessage());
            assertTrue(assertThrows(CheckpointException.class, () -> w.get("half")).getMessage()
                    .contains("tensor 'half' holds 1 NaN and 0 infinite values (of 1)"), "F16 widened and checked");
        }
    }

    @Test
    void jsonWritersHaveNoNonFiniteNumbers() {
        var n = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode();
        n.put("a", Double.NaN);
        n.put("b", Double.POSITIVE_INFINITY);
        n.putArray("c").add(1.5).add(Float.NEGATIVE_INFINITY);
        assertEquals("{\n  \"a\": null,\n  \"b\": null,\n  \"c\": [\n    1.5,\n    null\n  ]\n}\n",
                JsonFiles.toPrettyString(n).replace("\r", ""));
    }
}
