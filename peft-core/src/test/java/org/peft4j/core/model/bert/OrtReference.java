package org.peft4j.core.model.bert;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

import java.util.HashMap;
import java.util.Map;

/**
 * The independent reference: onnxruntime running the very ONNX bytes our importer reads.
 * Returns {@code last_hidden_state [batch, seq, hidden]}.
 */
final class OrtReference implements AutoCloseable {
    private final OrtEnvironment env;
    private final OrtSession session;

    OrtReference(byte[] onnx) throws OrtException {
        env = OrtEnvironment.getEnvironment();
        OrtSession.SessionOptions o = new OrtSession.SessionOptions();
        o.setIntraOpNumThreads(2);
        session = env.createSession(onnx, o);
    }

    float[][][] lastHiddenState(int[][] ids, int[][] mask, int[][] types) throws OrtException {
        Map<String, OnnxTensor> in = new HashMap<>();
        try {
            in.put("input_ids", OnnxTensor.createTensor(env, toLong(ids)));
            in.put("attention_mask", OnnxTensor.createTensor(env, toLong(mask)));
            in.put("token_type_ids", OnnxTensor.createTensor(env, toLong(types)));
            try (OrtSession.Result r = session.run(in)) {
                return (float[][][]) r.get(0).getValue();
            }
        } finally {
            for (OnnxTensor t : in.values()) {
                t.close();
            }
        }
    }

    private static long[][] toLong(int[][] a) {
        long[][] l = new long[a.length][];
        for (int i = 0; i < a.length; i++) {
            l[i] = new long[a[i].length];
            for (int j = 0; j < a[i].length; j++) {
                l[i][j] = a[i][j];
            }
        }
        return l;
    }

    @Override
    public void close() throws OrtException {
        session.close();
    }
}
