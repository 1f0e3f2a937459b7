package org.peft4j.prompt;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.model.Backbone;
import org.peft4j.core.model.BackboneInputs;
import org.peft4j.core.model.HeadModel;
import org.peft4j.core.nn.EmbeddingLayer;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.StateDictLoader;
import org.peft4j.core.peft.PeftConfig;
import org.peft4j.core.peft.PeftException;
import org.peft4j.core.peft.PeftMethod;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What prompt tuning, P-tuning and prefix tuning share: a {@link PromptLayer} around the model's
 * word embedding holds each adapter's {@link PromptSource}; the file holds only the source's
 * output as {@code prompt_embeddings} (PEFT's layout, loadable without an encoder), and
 * {@value #ENCODER_FILE} beside it holds an encoder's own weights (names as in PEFT's
 * {@code prompt_encoder.<adapter>.*}, which PEFT ignores) so training can resume:
 * {@code PeftModel.load(model, dir, name, true)} rebuilds the encoder from it.
 */
public abstract class PromptLearningMethod implements PeftMethod {
    /** PEFT's one tensor of a prompt-learning adapter. */
    public static final String PROMPT_EMBEDDINGS = "prompt_embeddings";
    /** The extra file with the prompt encoder's weights (P-tuning, projected prefixes). */
    public static final String ENCODER_FILE = "peft4j_prompt_encoder.safetensors";

    /** Width of {@code prompt_embeddings}' last axis for this model. */
    protected abstract int outputDim(PromptLearningConfig config, Backbone backbone);

    /** The source a new, trainable adapter starts from. */
    protected abstract PromptSource newSource(PromptLearningConfig config, Backbone backbone, EmbeddingLayer words, Rng rng);

    /** {@code token_dim} and {@code num_attention_heads} this method writes for a model. */
    protected int tokenDim(Backbone b) {
        return b.hiddenSize();
    }

    protected int attentionHeads(Backbone b) {
        return b.numAttentionHeads();
    }

    @Override
    public boolean preparesInputs() {
        return true;
    }

    static Backbone backboneOf(Module model) {
        if (model instanceof HeadModel h) {
            return h.backbone();
        }
        if (model instanceof Backbone b) {
            return b;
        }
        throw new IllegalArgumentException("prompt learning needs a model with a backbone (BERT, GPT-2, LLaMA heads), got "
                + model.getClass().getSimpleName());
    }

    /** Path and layer of the prompt layer (null when not injected yet). */
    static Map.Entry<String, PromptLayer> promptLayer(Module model) {
        for (Map.Entry<String, Module> e : model.namedModules().entrySet()) {
            if (e.getValue() instanceof PromptLayer l) {
                return Map.entry(e.getKey(), l);
            }
        }
        return null;
    }

    static PromptLayer requireLayer(Module model) {
        Map.Entry<String, PromptLayer> e = promptLayer(model);
        if (e == null) {
            throw new IllegalStateException("no prompt layer in " + model.getClass().getSimpleName());
        }
        return e.getValue();
    }

    @Override
    public List<String> inject(Module model, PeftConfig config, String adapterName, boolean forLoading) {
        PromptLearningConfig c = (PromptLearningConfig) config;
        Backbone b = backboneOf(model);
        boolean encDec = model instanceof HeadModel h && h.isEncoderDecoder();
        if (c.numTransformerSubmodules() != null && (c.numTransformerSubmodules() == 2) != encDec) {
            throw new IllegalArgumentException(peftType() + " adapter with num_transformer_submodules "
                    + c.numTransformerSubmodules() + (encDec
                    ? " was built for an encoder-only or decoder-only model; " + model.getClass().getSimpleName()
                    + " is an encoder-decoder model (PEFT's SEQ_2_SEQ_LM layout, num_transformer_submodules 2)"
                    : " is PEFT's encoder-decoder (SEQ_2_SEQ_LM) layout; " + model.getClass().getSimpleName()
                    + " is not an encoder-decoder model (it needs num_transformer_submodules 1)"));
        }
        int tokenDim = tokenDim(b);
        if (c.tokenDim() != null && c.tokenDim() != tokenDim) {
            throw new IllegalArgumentException("token_dim " + c.tokenDim() + " does not match the model's " + tokenDim
                    + " (" + peftType() + " on " + model.getClass().getSimpleName() + ")");
        }
        if (c.numLayers() != null && c.numLayers() != b.numLayers()) {
            throw new IllegalArgumentException("num_layers " + c.numLayers() + " does not match the model's " + b.numLayers()
                    + " layers");
        }
        if (c.numAttentionHeads() != null && c.numAttentionHeads() != attentionHeads(b)) {
            throw new IllegalArgumentException("num_attention_heads " + c.numAttentionHeads() + " does not match the model's "
                    + attentionHeads(b));
        }
        c.setModelSizes(tokenDim, attentionHeads(b), b.numLayers(), encDec);
        fillDefaults(c, b);
        if (c.totalVirtualTokens() >= b.maxPositions()) {
            throw new IllegalArgumentException("num_virtual_tokens " + c.totalVirtualTokens() + " leaves no room in the model's "
                    + b.maxPositions() + " positions");
        }
        Map.Entry<String, PromptLayer> found = promptLayer(model);
        String path;
        PromptLayer layer;
        if (found != null) {
            path = found.getKey();
            layer = found.getValue();
        } else {
            path = wordEmbeddingPath(model, b);
            layer = new PromptLayer((EmbeddingLayer) model.get(path));
            model.replace(path, layer);
        }
        PromptSource source = forLoading
                ? new PromptSource.Table(Nd4j.zeros(DataType.FLOAT, sourceRows(c), outputDim(c, b)))
                : newSource(c, b, layer, new Rng(config.seed()));
        layer.addAdapter(adapterName, source);
        return List.of(path);
    }

    /**
     * Rows of the adapter's table ({@code prompt_embeddings}): PEFT's {@code total_virtual_tokens}
     * (num_virtual_tokens × num_transformer_submodules); prefix tuning keeps num_virtual_tokens.
     */
    protected int sourceRows(PromptLearningConfig c) {
        return c.totalVirtualTokens();
    }

    /** Sizes a method fills from the model when the config leaves them out (encoder widths). */
    protected void fillDefaults(PromptLearningConfig c, Backbone b) {
    }

    /** The first {@code [vocab, hidden]} embedding in tree order: the word embedding of every family. */
    private static String wordEmbeddingPath(Module model, Backbone b) {
        for (Map.Entry<String, Module> e : model.namedModules().entrySet()) {
            if (e.getValue() instanceof EmbeddingLayer el && el.numEmbeddings() == b.vocabSize()
                    && el.embeddingDim() == b.hiddenSize()) {
                return e.getKey();
            }
        }
        throw new IllegalArgumentException("no word embedding [" + b.vocabSize() + ", " + b.hiddenSize() + "] in "
                + model.getClass().getSimpleName());
    }

    /** The adapter's virtual-token vectors {@code [n, outputDim]} (differentiable while training). */
    static Tensor promptOutput(Module model, String adapterName) {
        return requireLayer(model).source(adapterName).output();
    }

    // ---- files ----------------------------------------------------------------------------------

    @Override
    public Map<String, INDArray> stateToSave(Module model, PeftConfig config, String adapterName, Map<String, INDArray> state) {
        INDArray out;
        try (NoGrad ignored = NoGrad.enter()) {
            out = promptOutput(model, adapterName).value().dup();
        }
        // the prompt layer's own tensors are replaced by their output; modules_to_save (a
        // classification head) stay under their PEFT keys, as PEFT saves them beside prompt_embeddings
        String layerKeys = PeftModel.MODEL_PREFIX + promptLayer(model).getKey() + ".";
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.put(PROMPT_EMBEDDINGS, out);
        state.forEach((k, v) -> {
            if (!k.startsWith(layerKeys)) {
                m.put(k, v);
            }
        });
        return m;
    }

    @Override
    public Map<String, INDArray> stateToLoad(Module model, PeftConfig config, String adapterName, Map<String, INDArray> tensors) {
        Map.Entry<String, PromptLayer> e = promptLayer(model);
        if (e == null || !tensors.containsKey(PROMPT_EMBEDDINGS)) {
            return tensors;
        }
        Map<String, INDArray> out = new LinkedHashMap<>(tensors);
        INDArray v = out.remove(PROMPT_EMBEDDINGS);
        // the loaded adapter is a table (no encoder needed): its one parameter
        out.put(PeftModel.MODEL_PREFIX + e.getKey() + ".embedding.weight", v);
        return out;
    }

    @Override
    public void writeExtraFiles(Module model, PeftConfig config, String adapterName, Path dir) throws IOException {
        PromptSource s = requireLayer(model).source(adapterName);
        if (!s.hasEncoder()) {
            return;
        }
        Map<String, INDArray> w = new java.util.TreeMap<>();
        s.namedParameters().forEach((k, p) -> w.put(k, p.value()));
        SafeTensors.write(dir.resolve(ENCODER_FILE), w, Map.of("format", "pt", "peft4j", peftType() + " prompt encoder"));
    }

    @Override
    public void readExtraFiles(Module model, PeftConfig config, String adapterName, Path dir, boolean trainable) {
        Path file = dir.resolve(ENCODER_FILE);
        if (!trainable || !Files.isRegularFile(file)) {
            return;   // inference needs only prompt_embeddings
        }
        PromptLearningConfig c = (PromptLearningConfig) config;
        Backbone b = backboneOf(model);
        PromptLayer layer = requireLayer(model);
        PromptSource encoder = newSource(c, b, layer, new Rng(config.seed()));
        if (!encoder.hasEncoder()) {
            return;
        }
        Map<String, INDArray> w;
        try (org.peft4j.core.io.CheckpointWeights cw = org.peft4j.core.io.CheckpointWeights.openFile(file)) {
            w = cw.readAll(true);   // non-finite values reported, as for every adapter file
        } catch (IOException e) {
            throw new PeftException("cannot read " + file + ": " + e.getMessage(), e);
        }
        StateDictLoader.into(encoder.namedParameters(), peftType() + " prompt encoder of adapter '" + adapterName + "'")
                .load(w, file.toString(), true);
        layer.replaceSource(adapterName, encoder);
    }

    // ---- inputs ---------------------------------------------------------------------------------

    /** {@code x [n, d]} repeated over the batch: {@code [batch, n, d]}. */
    static Tensor repeatBatch(Tensor x, long batch) {
        Tensor one = Ops.reshape(x, 1, x.size(0), x.size(1));
        if (batch == 1) {
            return one;
        }
        Tensor[] parts = new Tensor[(int) batch];
        java.util.Arrays.fill(parts, one);
        return Ops.concat(0, parts);
    }

    /** {@code n} columns of {@code value} in front of {@code a [batch, cols]} (same data type). */
    static INDArray prependColumns(INDArray a, long n, double value) {
        INDArray front = Nd4j.valueArrayOf(new long[]{a.size(0), n}, value, a.dataType());
        return Nd4j.concat(1, front, a);
    }

    /** The error for virtual tokens + input beyond the model's positions, naming num_virtual_tokens. */
    static void checkPositions(Backbone b, long virtual, long past, long t) {
        if (virtual + past + t > b.maxPositions()) {
            throw new IllegalArgumentException("num_virtual_tokens " + virtual + " + input length " + (past + t)
                    + (past > 0 ? " (" + past + " cached + " + t + " new)" : "") + " = " + (virtual + past + t)
                    + " exceeds the model's " + b.maxPositions() + " positions");
        }
    }
}
