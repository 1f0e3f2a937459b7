package org.peft4j.lora;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Activation;
import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.LayerNorm;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Mlp;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;

/**
 * A small decoder-shaped model built from nn layers, with Hugging Face-style names:
 * {@code model.embed_tokens}, {@code model.layers.<i>.self_attn.{q_proj,v_proj}},
 * {@code model.layers.<i>.mlp.{up_proj,down_proj}}, {@code model.norm}, {@code classifier},
 * {@code lm_head}. Forward: {@code h = E[ids]; h += v(q(h)); h += mlp(h); h = norm(h)} →
 * {@code classifier(h)} {@code [B, T, classes]}.
 */
final class ToyModel extends Module {
    static final int VOCAB = 17;
    static final int DIM = 8;
    static final int CLASSES = 3;

    /** A container whose children are added from outside (test-only ModuleList/ModuleDict). */
    static final class Node extends Module {
        <M extends Module> M add(String name, M m) {
            return registerModule(name, m);
        }
    }

    ToyModel(int layers, boolean fanInFanOut, long seed) {
        Rng rng = new Rng(seed);
        Node model = new Node();
        model.add("embed_tokens", new Embedding(VOCAB, DIM, rng));
        Node list = new Node();
        for (int i = 0; i < layers; i++) {
            Node layer = new Node();
            Node attn = new Node();
            attn.add("q_proj", new Linear(DIM, DIM, true, fanInFanOut, rng));
            attn.add("v_proj", new Linear(DIM, DIM, true, fanInFanOut, rng));
            layer.add("self_attn", attn);
            layer.add("mlp", new Mlp("up_proj", new Linear(DIM, 2 * DIM, true, fanInFanOut, rng), new Activation("gelu"),
                    "down_proj", new Linear(2 * DIM, DIM, true, fanInFanOut, rng), null));
            list.add(Integer.toString(i), layer);
        }
        model.add("layers", list);
        model.add("norm", new LayerNorm(DIM, 1e-5));
        registerModule("model", model);
        registerModule("classifier", new Linear(DIM, CLASSES, true, rng));
        registerModule("lm_head", new Linear(DIM, VOCAB, false, rng));
        // Give the LayerNorm non-trivial values so its bias matters.
        LayerNorm norm = (LayerNorm) get("model.norm");
        float[] w = new float[DIM];
        float[] b = new float[DIM];
        for (int i = 0; i < DIM; i++) {
            w[i] = (float) (0.5 + rng.nextDouble());
            b[i] = (float) (rng.nextDouble() - 0.5);
        }
        norm.weight().setValue(Nd4j.createFromArray(w));
        norm.bias().setValue(Nd4j.createFromArray(b));
    }

    int numLayers() {
        return get("model.layers").children().size();
    }

    /** Hidden states {@code [B, T, DIM]}. */
    Tensor hidden(INDArray ids) {
        Module model = child("model");
        Tensor h = model.child("embed_tokens", org.peft4j.core.nn.EmbeddingLayer.class).forward(ids);
        for (Module layer : model.child("layers").children().values()) {
            Module attn = layer.child("self_attn");
            Tensor a = attn.child("v_proj", UnaryModule.class).forward(attn.child("q_proj", UnaryModule.class).forward(h));
            h = Ops.add(h, a);
            h = Ops.add(h, layer.child("mlp", UnaryModule.class).forward(h));
        }
        return model.child("norm", UnaryModule.class).forward(h);
    }

    /** Class logits {@code [B, T, CLASSES]}. */
    Tensor forward(INDArray ids) {
        return child("classifier", UnaryModule.class).forward(hidden(ids));
    }

    /** Vocabulary logits {@code [B, T, VOCAB]}. */
    Tensor lmLogits(INDArray ids) {
        return child("lm_head", UnaryModule.class).forward(hidden(ids));
    }

    /** Fixed-seed ids {@code [batch, seq]}. */
    static INDArray ids(long seed, int batch, int seq) {
        Rng rng = new Rng(seed);
        long[] v = new long[batch * seq];
        for (int i = 0; i < v.length; i++) {
            v[i] = rng.nextInt(VOCAB);
        }
        return Nd4j.createFromArray(v).reshape('c', batch, seq);
    }

    /** Converts every parameter of a module tree to DOUBLE (for gradient checks). */
    static void toDouble(Module m) {
        for (Parameter p : m.parameters()) {
            p.setValue(p.value().castTo(DataType.DOUBLE));
        }
    }
}
