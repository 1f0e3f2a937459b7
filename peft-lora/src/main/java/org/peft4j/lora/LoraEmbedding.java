package org.peft4j.lora;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.ParameterDict;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * LoRA around an embedding table (PEFT's {@code lora.Embedding}):
 * {@code y = E[ids] + Σ_active s·(Aᵀ[ids])·Bᵀ} with {@code lora_embedding_A.<adapter>}
 * {@code [r, vocab]} and {@code lora_embedding_B.<adapter>} {@code [dim, r]} (plain parameters,
 * so their names have no {@code .weight}). The delta of the table is {@code (s·B·A)ᵀ}
 * {@code [vocab, dim]}. No dropout (PEFT applies none on embeddings).
 *
 * <p>It is an {@link Embedding}, so models that look their embeddings up by type keep working;
 * {@link #weight()} is the wrapped table.
 */
public class LoraEmbedding extends Embedding implements LoraLayer {
    static final String BASE = "base_layer";
    static final String A = "lora_embedding_A";
    static final String B = "lora_embedding_B";

    private final AdapterBook book = new AdapterBook();

    public LoraEmbedding(Embedding base) {
        super(base);
        registerModule(BASE, base);
        registerModule(A, new ParameterDict());
        registerModule(B, new ParameterDict());
        if (!base.isTraining()) {
            eval();
        }
    }

    @Override
    public Embedding baseLayer() {
        return child(BASE, Embedding.class);
    }

    @Override
    public Module unwrap() {
        return baseLayer();
    }

    /** The wrapped table {@code [vocab, dim]}. */
    @Override
    public Parameter weight() {
        return baseLayer().weight();
    }

    private ParameterDict dict(String name) {
        return child(name, ParameterDict.class);
    }

    /** Adds adapter {@code name}; {@code init} is {@code true}, {@code false} or {@code gaussian}. */
    public void addAdapter(String name, int r, int alpha, boolean rslora, String init, Rng initRng, boolean forLoading) {
        AdapterBook.checkRank(r);
        DataType dt = weight().value().dataType();
        INDArray a;
        INDArray b;
        if (forLoading) {
            a = Nd4j.zeros(dt, r, numEmbeddings());
            b = Nd4j.zeros(dt, embeddingDim(), r);
        } else {
            INDArray[] ab = LoraInit.embeddingFactors(numEmbeddings(), embeddingDim(), init, r, initRng, dt);
            a = ab[0];
            b = ab[1];
        }
        book.add(name, new Settings(r, alpha, LoraConfig.scaling(alpha, r, rslora), 0.0, rslora, false), null);
        dict(A).put(name, new Parameter(a));
        dict(B).put(name, new Parameter(b));
    }

    @Override
    public void addAdapterFromFactors(String name, INDArray a, INDArray b, double dropout) {
        int r = AdapterBook.factorRank(this, a, b, numEmbeddings(), embeddingDim());
        DataType dt = weight().value().dataType();
        book.add(name, new Settings(r, r, 1.0, 0.0, false, false), null);
        dict(A).put(name, new Parameter(a.castTo(dt).dup('c')));
        dict(B).put(name, new Parameter(b.castTo(dt).dup('c')));
    }

    @Override
    public Set<String> adapterNames() {
        return book.names();
    }

    @Override
    public Settings settings(String adapter) {
        return book.get(adapter);
    }

    @Override
    public List<String> activeAdapters() {
        return List.copyOf(book.active);
    }

    @Override
    public void setActiveAdapters(List<String> adapters) {
        book.active.clear();
        book.active.addAll(adapters);
    }

    @Override
    public void setAdaptersEnabled(boolean enabled) {
        book.setEnabled(enabled, this);
    }

    @Override
    public boolean adaptersEnabled() {
        return book.enabled;
    }

    @Override
    public Parameter loraA(String adapter) {
        book.get(adapter);
        return dict(A).getParameter(adapter);
    }

    @Override
    public Parameter loraB(String adapter) {
        book.get(adapter);
        return dict(B).getParameter(adapter);
    }

    @Override
    public Map<String, Parameter> adapterParameters(String adapter) {
        Map<String, Parameter> out = new LinkedHashMap<>();
        if (book.settings.containsKey(adapter)) {
            out.put(A + "." + adapter, loraA(adapter));
            out.put(B + "." + adapter, loraB(adapter));
        }
        return out;
    }

    @Override
    public Map<String, Parameter> savedTensors(String adapter) {
        Map<String, Parameter> out = new LinkedHashMap<>();
        out.put(A, loraA(adapter));
        out.put(B, loraB(adapter));
        return out;
    }

    @Override
    public void deleteAdapter(String adapter) {
        if (!book.settings.containsKey(adapter)) {
            return;
        }
        book.remove(adapter);
        replace(A, dict(A).without(adapter));
        replace(B, dict(B).without(adapter));
    }

    @Override
    public Tensor forward(INDArray ids) {
        Embedding base = baseLayer();
        return book.forward(this, () -> base.forward(ids), () -> ids.size(0), (result, name, rows) ->
                LoraOps.embeddingAdd(result, ids, loraA(name), loraB(name), book.get(name).scaling(), paddingIdx(), rows));
    }

    /** {@code s·B·A} {@code [dim, vocab]} (the table's delta is its transpose). */
    @Override
    public INDArray deltaWeight(String adapter) {
        Settings s = book.get(adapter);
        return AdapterBook.delta(loraA(adapter).value(), loraB(adapter).value(), s.scaling(), embeddingDim(), numEmbeddings());
    }

    @Override
    public boolean isMerged() {
        return book.anyMerged();
    }

    @Override
    public List<String> mergedAdapters() {
        return book.mergedNames();
    }

    @Override
    public void merge(List<String> adapters) {
        INDArray table = weight().value();
        for (String name : adapters) {
            if (!book.settings.containsKey(name) || book.isMerged(name)) {
                continue;
            }
            INDArray delta = deltaWeight(name).transpose().dup('c').castTo(table.dataType()); // [vocab, dim]
            INDArray previous = table.dup('c');                                                // kept for unmerge
            table.addi(delta);
            book.merged.add(new AdapterBook.MergeRecord(name, previous));
        }
    }

    @Override
    public void unmerge() {
        INDArray table = weight().value();
        while (!book.merged.isEmpty()) {
            AdapterBook.MergeRecord m = book.merged.remove(book.merged.size() - 1);
            table.assign(m.previousWeight());   // in place: a tied output head sees the restored table too
        }
    }

    @Override
    protected String describe() {
        return "LoraEmbedding(" + numEmbeddings() + ", " + embeddingDim() + ", " + book.describe() + ")";
    }
}
