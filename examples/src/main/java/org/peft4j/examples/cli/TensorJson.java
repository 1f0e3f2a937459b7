package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.AtomicFiles;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;

/**
 * The {@code {"shape": [...], "values": [row-major floats]}} form that {@code logits} and
 * {@code embed} write: one JSON object, values in C order, as fp32 numbers ({@code null} for a
 * NaN or infinite value, which JSON cannot hold).
 */
final class TensorJson {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TensorJson() {
    }

    static ObjectNode toJson(INDArray a) {
        ObjectNode n = JSON.createObjectNode();
        ArrayNode shape = n.putArray("shape");
        for (long s : a.shape()) {
            shape.add(s);
        }
        ArrayNode values = n.putArray("values");
        // dup('c') makes the row-major order explicit for views and f-ordered arrays
        float[] v = a.castTo(DataType.FLOAT).dup('c').data().asFloat();
        for (float f : v) {
            if (Float.isFinite(f)) {
                values.add(f);
            } else {
                values.addNull();   // JSON has no NaN/Infinity (Jackson would write the string "NaN")
            }
        }
        return n;
    }

    /** Writes to {@code file} atomically, or prints to {@code out} when {@code file} is null. */
    static void write(INDArray a, Path file, PrintStream out) throws IOException {
        String text = JSON.writeValueAsString(toJson(a));
        if (file == null) {
            out.println(text);
        } else {
            Path abs = file.toAbsolutePath();
            if (abs.getParent() != null) {
                java.nio.file.Files.createDirectories(abs.getParent());
            }
            AtomicFiles.writeString(abs, text + "\n");
        }
    }
}
