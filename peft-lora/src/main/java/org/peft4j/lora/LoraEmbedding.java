package org.peft4j.lora;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.EmbeddingLayer;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.ParameterDict;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

/**
 * LoRA around an embedding table (PEFT's {@code lora.Embedding}):
 * {@code y = E[ids] + Σ_active s·(Aᵀ[ids])·Bᵀ} with {@code lora_embedding_A.<adapter>}
 * {@code [r, vocab]} and {@code lora_embedding_B.<adapter>} {@code [dim, r]} (plain parameters,
 * so their names have no {@code .weight}). The delta of the table is {@code (s·B·A)ᵀ}
 * {@code [vocab, dim]}. No dropout (PEFT applies none on embeddings).
 *
 * <p>It is an {@link EmbeddingLayer}, so models that look their embeddings up by that type keep
 * working; {@link #weight()} is the wrapped table (a tied LM head keeps reading it).
 */
public class LoraEmbedding extends LoraLayer implements EmbeddingLayer {
    static final String A = "lora_embedding_A";
    static final String B = "lora_embedding_B";

    public LoraEmbedding(Embedding base) {
        super(base, A, B, "");
        registerModule(A, new ParameterDict());
        registerModule(B, new ParameterDict());
    }

    @Override
    public Embedding baseLayer() {
        return (Embedding) super.baseLayer();
    }

    /** The wrapped table {@code [vocab, dim]}. */
    @Override
    public Parameter weight() {
        return baseLayer().weight();
    }

    @Override
    public int numEmbeddings() {
        return baseLayer().numEmbeddings();
    }

    @Override
    public int embeddingDim() {
        return baseLayer().embeddingDim();
    }

    @Override
    public int paddingIdx() {
        return baseLayer().paddingIdx();
    }

    /** The delta {@code s·B·A} is {@code [dim, vocab]}: "in" is the vocabulary. */
    @Override
    public int deltaIn() {
        return numEmbeddings();
    }

    @Override
    public int deltaOut() {
        return embeddingDim();
    }

    private ParameterDict dict(String name) {
        return child(name, ParameterDict.class);
    }

    /** Adds adapter {@code name}; {@code init} is {@code true}, {@code false} or {@code gaussian}. */
    public void addAdapter(String name, int r, int alpha, boolean rslora, String init, Rng initRng, boolean forLoading) {
        checkRank(r);
        if (hasAdapter(name)) {
            throw new IllegalArgumentException("LoRA adapter '" + name + "' already exists in this layer");
        }
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
        addSettings(name, new Settings(r, alpha, LoraConfig.scaling(alpha, r, rslora), 0.0, rslora, false), null);
        putFactors(name, a, b);
    }

    /** As {@link LoraLayer#addAdapterFromFactors}, without dropout (PEFT applies none on embeddings). */
    @Override
    public void addAdapterFromFactors(String name, INDArray a, INDArray b, double dropout) {
        super.addAdapterFromFactors(name, a, b, 0.0);
    }

    @Override
    protected Parameter factor(String dict, String adapter) {
        return dict(dict).getParameter(adapter);
    }

    @Override
    protected void putFactors(String adapter, INDArray a, INDArray b) {
        DataType dt = weight().value().dataType();
        dict(A).put(adapter, new Parameter(a.castTo(dt).dup('c')));
        dict(B).put(adapter, new Parameter(b.castTo(dt).dup('c')));
    }

    @Override
    protected void removeEntries(String adapter) {
        replace(A, dict(A).without(adapter));
        replace(B, dict(B).without(adapter));
    }

    @Override
    public Tensor forward(INDArray ids) {
        Embedding base = baseLayer();
        return adaptedForward(() -> base.forward(ids), () -> ids.size(0), (result, name, rows) ->
                LoraOps.embeddingAdd(result, ids, loraA(name), loraB(name), settings(name).scaling(), paddingIdx(), rows));
    }

    /** {@code table ← table + (s·B·A)ᵀ} in place (a tied output head sees it too); returns the table from before. */
    @Override
    protected INDArray mergeAdapter(String name) {
        INDArray table = weight().value();
        INDArray delta = deltaWeight(name).transpose().dup('c').castTo(table.dataType()); // [vocab, dim]
        INDArray previous = table.dup('c');                                                // kept for unmerge
        table.addi(delta);
        return previous;
    }

    @Override
    protected void restoreMerged(String adapter, INDArray previous) {
        weight().value().assign(previous);   // in place: a tied output head sees the restored table too
    }

    @Override
    protected String describe() {
        return "LoraEmbedding(" + numEmbeddings() + ", " + embeddingDim() + ", " + describeAdapters() + ")";
    }
}
