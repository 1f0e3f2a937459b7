package org.peft4j.benchmarks;

import org.peft4j.core.model.bert.BertConfig;

/**
 * Matrix-product FLOPs (a multiply-add = 2) that one BERT training or inference step needs, counted
 * from the architecture. Only products a correct implementation must run are counted:
 * <ul>
 *   <li>forward: the six dense projections per layer, q·kᵀ and probs·v, the LoRA factors and the classifier;</li>
 *   <li>backward: input gradients of every dense layer whose input needs a gradient (in LoRA and
 *       QLoRA the embeddings are frozen, so layer 0's query/key/value input gradients are not needed),
 *       the attention products (dP = dO·vᵀ, dV = Pᵀ·dO, dQ = dS·k, and dK = dSᵀ·q unless key and its
 *       input are both frozen, as in layer 0 under LoRA), the LoRA factor gradients, and weight
 *       gradients only for trainable weights (none for frozen base weights).</li>
 * </ul>
 * Element-wise work (softmax, layer norm, GELU, optimizer) is not counted.
 */
public final class Flops {
    private Flops() {
    }

    /** One forward pass of the encoder (no head), as in the inference benchmark. */
    public static double encoderForward(BertConfig c, int batch, int seq) {
        double n = (double) batch * seq;
        double h = c.hiddenSize();
        double i = c.intermediateSize();
        double perLayer = 2 * n * (4 * h * h + 2 * h * i) + 2 * (2 * n * seq * h);
        return c.numHiddenLayers() * perLayer;
    }

    /** One training step (forward + backward) of the classifier in {@code mode}; LoRA rank {@code r} on query/value. */
    public static double trainingStep(BertConfig c, int batch, int seq, MiniLm.Mode mode, int r, int labels) {
        double n = (double) batch * seq;
        double h = c.hiddenSize();
        double i = c.intermediateSize();
        double b = batch;
        boolean lora = mode != MiniLm.Mode.FULL;
        double dense = 2 * n * h * h;          // one h→h projection
        double ffn = 2 * n * h * i;            // one h↔i projection
        double attnProduct = 2 * n * seq * h;  // one of q·kᵀ, P·v and their gradients (all heads)
        double loraFactor = 2 * n * h * r;     // one of x·Aᵀ, h·Bᵀ and their gradients
        double total = 0;
        for (int layer = 0; layer < c.numHiddenLayers(); layer++) {
            boolean first = layer == 0;
            double fwd = 4 * dense + 2 * ffn + 2 * attnProduct + (lora ? 2 * 2 * loraFactor : 0);
            double bwd;
            if (!lora) {
                // dX and dW of every projection; all four attention products
                bwd = 2 * (4 * dense + 2 * ffn) + 4 * attnProduct;
            } else {
                double inputGrads = (first ? 1 : 4) * dense + 2 * ffn;   // layer 0: only attention.output.dense's dX
                double attn = (first ? 3 : 4) * attnProduct;             // layer 0: no dK
                // per adapter: dB, d(hidden) and dA always; dX through A unless the input is frozen
                double adapters = 2 * ((first ? 3 : 4) * loraFactor);
                bwd = inputGrads + attn + adapters;
            }
            total += fwd + bwd;
        }
        double head = 2 * b * h * labels;
        total += head * 3;   // forward, dW, dX
        return total;
    }
}
