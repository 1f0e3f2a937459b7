package org.peft4j.core.model.bert;

import onnx.Onnx;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.OnnxReader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads the weights of a BERT encoder exported to ONNX (PyTorch's exporter, as in the bundled
 * MiniLM and BGE models) into Hugging Face {@code BertModel} state-dict keys, and infers its
 * {@link BertConfig} from the graph.
 *
 * <p>The exporter keeps the names of biases, LayerNorm and embedding tensors, but stores each
 * linear weight as an unnamed {@code onnx::MatMul_NNN} initializer laid out {@code [in, out]}.
 * Those are named through the {@code MatMul} node that consumes them as its second input
 * ({@code /encoder/layer.0/attention/self/query/MatMul} →
 * {@code encoder.layer.0.attention.self.query.weight}) and transposed to PyTorch's
 * {@code [out, in]}. Every initializer must be mapped or be a known buffer
 * ({@link BertKeys#IGNORED_BUFFERS}); anything else is an error naming it.
 */
public final class BertOnnxImport {
    private static final Logger LOG = LoggerFactory.getLogger(BertOnnxImport.class);
    private static final Pattern LAYER = Pattern.compile("^encoder\\.layer\\.(\\d+)\\.");

    private BertOnnxImport() {
    }

    /**
     * The result of importing a BERT encoder.
     *
     * @param config    inferred architecture (dropouts and labels at Hugging Face defaults)
     * @param weights   Hugging Face BertModel keys → fp32 arrays ({@code [out, in]} for linear weights)
     * @param hasPooler whether {@code pooler.dense} weights were present
     * @param ignored   initializers deliberately not imported (buffers such as {@code position_ids})
     */
    public record BertWeights(BertConfig config, Map<String, INDArray> weights, boolean hasPooler, List<String> ignored) {
        public BertWeights {
            weights = Collections.unmodifiableMap(new LinkedHashMap<>(weights));
            ignored = List.copyOf(ignored);
        }
    }

    /** Imports a BERT ONNX file. */
    public static BertWeights bert(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read ONNX file " + file, e);
        }
        return bert(bytes, file.toString());
    }

    /** Imports a BERT ONNX model from a class-path resource such as {@code /all-minilm-l6-v2.onnx}. */
    public static BertWeights bertFromResource(String resource) {
        return bert(OnnxReader.readResource(resource), resource);
    }

    /** Imports a BERT ONNX model from its bytes; {@code source} names it in error messages. */
    public static BertWeights bert(byte[] bytes, String source) {
        long t0 = System.nanoTime();
        Onnx.GraphProto g = OnnxReader.parse(bytes, source).getGraph();

        // who consumes each value, and constant values by output name (Constant nodes and initializers)
        Map<String, List<Onnx.NodeProto>> consumers = new HashMap<>();
        Map<String, Onnx.NodeProto> producer = new HashMap<>();
        Map<String, Onnx.TensorProto> constants = new HashMap<>();
        for (Onnx.NodeProto n : g.getNodeList()) {
            for (String in : n.getInputList()) {
                consumers.computeIfAbsent(in, k -> new ArrayList<>()).add(n);
            }
            for (String out : n.getOutputList()) {
                producer.put(out, n);
            }
            if (n.getOpType().equals("Constant")) {
                for (Onnx.AttributeProto a : n.getAttributeList()) {
                    if (a.getName().equals("value") && a.hasT()) {
                        constants.put(n.getOutput(0), a.getT());
                    }
                }
            }
        }
        for (Onnx.TensorProto t : g.getInitializerList()) {
            constants.put(t.getName(), t);
        }

        Map<String, INDArray> weights = new TreeMap<>();
        Map<String, String> origin = new HashMap<>();
        List<String> ignored = new ArrayList<>();
        List<String> unmapped = new ArrayList<>();
        for (Onnx.TensorProto t : g.getInitializerList()) {
            String name = t.getName();
            String key = stripBertPrefix(name);
            if (BertKeys.IGNORED_BUFFERS.contains(key)) {
                ignored.add(name);
                continue;
            }
            boolean transpose = false;
            if (!BertKeys.isParameterKey(key)) {
                key = keyFromMatMul(name, consumers, source);
                transpose = key != null;
            }
            if (key == null || !BertKeys.isParameterKey(key)) {
                unmapped.add(name + " (used by " + describeConsumers(consumers.get(name)) + ")");
                continue;
            }
            INDArray v = OnnxReader.toArray(t, source);
            org.peft4j.core.io.FiniteCheck.check(v, name, source);
            if (transpose) {
                if (v.rank() != 2) {
                    throw new IllegalArgumentException("ONNX model " + source + ": MatMul weight " + name + " for " + key
                            + " has shape " + Arrays.toString(v.shape()) + ", expected a matrix");
                }
                v = v.transpose().dup('c');   // [in, out] -> [out, in]
            }
            if (v.dataType() != DataType.FLOAT) {
                v = v.castTo(DataType.FLOAT);
            }
            String previous = origin.put(key, name);
            if (previous != null) {
                throw new IllegalArgumentException("ONNX model " + source + ": initializers " + previous + " and " + name
                        + " both map to " + key);
            }
            weights.put(key, v);
        }
        if (!unmapped.isEmpty()) {
            throw new IllegalArgumentException("ONNX model " + source + ": " + unmapped.size()
                    + " initializers could not be mapped to BERT keys: " + unmapped);
        }

        BertConfig config = inferConfig(g, weights, constants, producer, source);
        boolean hasPooler = weights.containsKey("pooler.dense.weight");
        // strict: the mapped keys must be exactly the model's keys, with the model's shapes
        Map<String, long[]> expected = BertKeys.expectedShapes(config, hasPooler);
        List<String> missing = new ArrayList<>();
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            INDArray v = weights.get(e.getKey());
            if (v == null) {
                missing.add(e.getKey());
            } else if (!Arrays.equals(v.shape(), e.getValue())) {
                throw new IllegalArgumentException("ONNX model " + source + ": " + e.getKey() + " (from " + origin.get(e.getKey())
                        + ") has shape " + Arrays.toString(v.shape()) + ", expected " + Arrays.toString(e.getValue()));
            }
        }
        TreeSet<String> extra = new TreeSet<>(weights.keySet());
        extra.removeAll(expected.keySet());
        if (!missing.isEmpty() || !extra.isEmpty()) {
            throw new IllegalArgumentException("ONNX model " + source + " does not hold a complete BERT encoder: missing "
                    + missing + ", unexpected " + extra);
        }
        Map<String, INDArray> ordered = new LinkedHashMap<>();
        for (String k : expected.keySet()) {
            ordered.put(k, weights.get(k));
        }
        LOG.info("imported {} from ONNX: {} tensors ({} ignored), {} layers, hidden {}, {} heads, in {} ms", source,
                ordered.size(), ignored.size(), config.numHiddenLayers(), config.hiddenSize(), config.numAttentionHeads(),
                (System.nanoTime() - t0) / 1_000_000);
        return new BertWeights(config, ordered, hasPooler, ignored);
    }

    private static String stripBertPrefix(String name) {
        return name.startsWith("bert.") ? name.substring(5) : name;
    }

    /**
     * The key of a weight used as the second input of exactly one MatMul node: from the node's
     * name ({@code /encoder/layer.0/attention/self/query/MatMul}), or, for an unnamed node, from
     * the bias added to its output ({@code encoder.layer.0.attention.self.query.bias}).
     */
    private static String keyFromMatMul(String name, Map<String, List<Onnx.NodeProto>> consumers, String source) {
        List<Onnx.NodeProto> users = consumers.get(name);
        if (users == null || users.size() != 1) {
            return null;
        }
        Onnx.NodeProto mm = users.get(0);
        if (!mm.getOpType().equals("MatMul") || mm.getInputCount() != 2 || !mm.getInput(1).equals(name)) {
            return null;
        }
        String fromName = null;
        String nodeName = mm.getName();
        if (nodeName.endsWith("/MatMul")) {
            String path = nodeName.substring(nodeName.startsWith("/") ? 1 : 0, nodeName.length() - "/MatMul".length());
            fromName = stripBertPrefix(path.replace('/', '.')) + ".weight";
        }
        String fromBias = null;
        List<Onnx.NodeProto> next = consumers.get(mm.getOutput(0));
        if (next != null && next.size() == 1 && next.get(0).getOpType().equals("Add")) {
            for (String in : next.get(0).getInputList()) {
                String k = stripBertPrefix(in);
                if (k.endsWith(".bias") && BertKeys.isParameterKey(k)) {
                    fromBias = k.substring(0, k.length() - ".bias".length()) + ".weight";
                }
            }
        }
        if (fromName != null && fromBias != null && !fromName.equals(fromBias)) {
            throw new IllegalArgumentException("ONNX model " + source + ": weight " + name + " is used by node " + nodeName
                    + " (→ " + fromName + ") but its output gets bias of " + fromBias);
        }
        return fromName != null && BertKeys.isParameterKey(fromName) ? fromName : fromBias;
    }

    private static String describeConsumers(List<Onnx.NodeProto> users) {
        if (users == null || users.isEmpty()) {
            return "no node";
        }
        List<String> d = new ArrayList<>();
        for (Onnx.NodeProto n : users) {
            d.add(n.getOpType() + " " + n.getName());
        }
        return String.join(", ", d);
    }

    private static BertConfig inferConfig(Onnx.GraphProto g, Map<String, INDArray> w,
                                          Map<String, Onnx.TensorProto> constants, Map<String, Onnx.NodeProto> producer,
                                          String source) {
        INDArray word = require(w, "embeddings.word_embeddings.weight", source);
        INDArray pos = require(w, "embeddings.position_embeddings.weight", source);
        INDArray type = require(w, "embeddings.token_type_embeddings.weight", source);
        int hidden = (int) word.size(1);
        int layers = 0;
        for (String k : w.keySet()) {
            Matcher m = LAYER.matcher(k);
            if (m.find()) {
                layers = Math.max(layers, Integer.parseInt(m.group(1)) + 1);
            }
        }
        if (layers == 0) {
            throw new IllegalArgumentException("ONNX model " + source + " has no encoder.layer.* weights");
        }
        int intermediate = (int) require(w, "encoder.layer.0.intermediate.dense.weight", source).size(0);

        int erf = 0;
        int tanh = 0;
        int fusedGelu = 0;
        for (Onnx.NodeProto n : g.getNodeList()) {
            switch (n.getOpType()) {
                case "Erf" -> erf++;
                case "Tanh" -> tanh++;
                case "Gelu" -> fusedGelu++;
                default -> { }
            }
        }
        if (erf < layers && fusedGelu < layers) {
            throw new IllegalArgumentException("ONNX model " + source + " has " + erf + " Erf nodes for " + layers
                    + " layers (and " + tanh + " Tanh): only exact-GELU ('gelu') BERT exports are supported");
        }

        int heads = inferHeads(g, constants, producer, hidden, source);
        double eps = inferLayerNormEps(g, constants, source);
        return BertConfig.builder()
                .vocabSize((int) word.size(0))
                .hiddenSize(hidden)
                .numHiddenLayers(layers)
                .numAttentionHeads(heads)
                .intermediateSize(intermediate)
                .hiddenAct("gelu")
                .maxPositionEmbeddings((int) pos.size(0))
                .typeVocabSize((int) type.size(0))
                .layerNormEps(eps)
                .classifierPooling(w.containsKey("pooler.dense.weight") ? BertConfig.Pooling.POOLER : BertConfig.Pooling.MEAN)
                .build();
    }

    private static INDArray require(Map<String, INDArray> w, String key, String source) {
        INDArray v = w.get(key);
        if (v == null) {
            throw new IllegalArgumentException("ONNX model " + source + " has no " + key);
        }
        return v;
    }

    /**
     * Heads from the reshape of layer 0's key/query/value to {@code [B, T, heads, headDim]}: the
     * shape is a Concat whose last two inputs are constants. Cross-checked against the score
     * scale {@code 1/sqrt(headDim)} (a Div by a constant) when the graph has one.
     */
    private static int inferHeads(Onnx.GraphProto g, Map<String, Onnx.TensorProto> constants,
                                  Map<String, Onnx.NodeProto> producer, int hidden, String source) {
        Integer heads = null;
        Integer headDim = null;
        Double scale = null;
        for (Onnx.NodeProto n : g.getNodeList()) {
            String name = n.getName();
            if (!name.contains("layer.0/attention/self/")) {
                continue;
            }
            if (heads == null && n.getOpType().equals("Reshape") && n.getInputCount() == 2) {
                Onnx.NodeProto concat = producer.get(n.getInput(1));
                if (concat != null && concat.getOpType().equals("Concat") && concat.getInputCount() == 4) {
                    Long h = scalarLong(constants.get(concat.getInput(2)));
                    Long d = scalarLong(constants.get(concat.getInput(3)));
                    if (h != null && d != null && h > 0 && d > 0) {
                        heads = h.intValue();
                        headDim = d.intValue();
                    }
                }
                Onnx.TensorProto direct = constants.get(n.getInput(1));
                if (heads == null && direct != null && direct.getDimsCount() == 1 && direct.getDims(0) == 4) {
                    long[] s = OnnxReader.toArray(direct, source).toLongVector();
                    if (s[2] > 0 && s[3] > 0) {
                        heads = (int) s[2];
                        headDim = (int) s[3];
                    }
                }
            }
            if (scale == null && n.getOpType().equals("Div") && n.getInputCount() == 2) {
                Onnx.TensorProto c = constants.get(n.getInput(1));
                if (c != null && c.getDataType() == Onnx.TensorProto.DataType.FLOAT_VALUE && c.getDimsCount() == 0) {
                    scale = OnnxReader.toArray(c, source).getDouble(0);
                }
            }
        }
        if (heads == null) {
            if (scale == null) {
                throw new IllegalArgumentException("ONNX model " + source
                        + ": cannot infer the number of attention heads (no head reshape or score scale in layer 0)");
            }
            headDim = (int) Math.round(scale * scale);
            if (headDim <= 0 || hidden % headDim != 0) {
                throw new IllegalArgumentException("ONNX model " + source + ": score scale " + scale
                        + " gives head size " + headDim + ", which does not divide hidden size " + hidden);
            }
            heads = hidden / headDim;
            LOG.debug("{}: heads inferred from the attention score scale {}", source, scale);
        }
        if ((long) heads * headDim != hidden) {
            throw new IllegalArgumentException("ONNX model " + source + ": " + heads + " heads x " + headDim
                    + " does not equal hidden size " + hidden);
        }
        if (scale != null && Math.abs(scale - Math.sqrt(headDim)) > 1e-4 * Math.sqrt(headDim)) {
            throw new IllegalArgumentException("ONNX model " + source + ": attention score scale " + scale
                    + " is not sqrt(head size " + headDim + ")");
        }
        return heads;
    }

    /**
     * LayerNorm eps: the constant added to the variance in the exported embeddings LayerNorm
     * ({@code /embeddings/LayerNorm/Add}); Hugging Face's 1e-12 when the graph does not show it.
     * The fp32 constant is read back as the shortest decimal (9.9999999e-13f → 1e-12).
     */
    private static double inferLayerNormEps(Onnx.GraphProto g, Map<String, Onnx.TensorProto> constants, String source) {
        for (Onnx.NodeProto n : g.getNodeList()) {
            if (n.getOpType().equals("Add") && n.getName().endsWith("embeddings/LayerNorm/Add") && n.getInputCount() == 2) {
                Onnx.TensorProto c = constants.get(n.getInput(1));
                if (c != null && c.getDataType() == Onnx.TensorProto.DataType.FLOAT_VALUE && c.getDimsCount() == 0) {
                    float eps = OnnxReader.toArray(c, source).getFloat(0);
                    if (eps > 0 && eps < 1e-3) {
                        return Double.parseDouble(Float.toString(eps));
                    }
                }
            }
            if (n.getOpType().equals("LayerNormalization")) {
                for (Onnx.AttributeProto a : n.getAttributeList()) {
                    if (a.getName().equals("epsilon")) {
                        return Double.parseDouble(Float.toString(a.getF()));
                    }
                }
            }
        }
        LOG.debug("{}: LayerNorm eps not visible in the graph, using 1e-12", source);
        return 1e-12;
    }

    private static Long scalarLong(Onnx.TensorProto t) {
        if (t == null || (t.getDataType() != Onnx.TensorProto.DataType.INT64_VALUE
                && t.getDataType() != Onnx.TensorProto.DataType.INT32_VALUE)) {
            return null;
        }
        long n = 1;
        for (long d : t.getDimsList()) {
            n *= d;
        }
        if (n != 1) {
            return null;
        }
        return OnnxReader.toArray(t, "constant").getLong(0);
    }
}
