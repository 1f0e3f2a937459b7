package org.peft4j.quant.bench;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.model.llama.LlamaForCausalLM;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;
import org.peft4j.core.train.AdamW;
import org.peft4j.lora.LoraConfig;
import org.peft4j.quant.QuantConfig;
import org.peft4j.quant.QuantizedModels;
import org.peft4j.quant.Quantizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Peak resident memory of LoRA training on a large LLaMA-style checkpoint, fp32 vs NF4 (QLoRA):
 * loads the folder (fp32: {@code LlamaForCausalLM.load}; nf4: {@code QuantizedModels.loadLlama},
 * layer by layer), applies LoRA r 8 / alpha 16 on all linear layers, runs a few AdamW steps on
 * fixed token ids (causal LM loss), and prints VmHWM / VmRSS from {@code /proc/self/status} after
 * loading and after training.
 *
 * <p>Build and run (same command for both modes; CP = the module classes plus peft-core's runtime classpath):
 * <pre>
 * mvn -B -q -o test-compile -pl peft-quant -am
 * mvn -B -q -o dependency:build-classpath -pl peft-core -Dmdep.outputFile=/tmp/core-cp.txt
 * CP=peft-quant/target/test-classes:peft-quant/target/classes:peft-lora/target/classes:peft-core/target/classes:$(cat /tmp/core-cp.txt)
 * java -Xmx6g -Dorg.bytedeco.javacpp.maxbytes=16g -Dorg.bytedeco.javacpp.maxphysicalbytes=22g -cp $CP \
 *      org.peft4j.quant.bench.LlamaMemoryBench /tmp/llama-1b nf4|fp32 [steps=3] [seq=64] [batch=1] [gc]
 * </pre>
 */
public final class LlamaMemoryBench {
    private LlamaMemoryBench() {
    }

    static String memory() throws Exception {
        String hwm = "?";
        String rss = "?";
        for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (l.startsWith("VmHWM:")) {
                hwm = l.substring(6).trim();
            } else if (l.startsWith("VmRSS:")) {
                rss = l.substring(6).trim();
            }
        }
        return "VmHWM " + hwm + ", VmRSS " + rss;
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        String mode = args[1];
        int steps = args.length > 2 ? Integer.parseInt(args[2]) : 3;
        int seq = args.length > 3 ? Integer.parseInt(args[3]) : 64;
        int batch = args.length > 4 ? Integer.parseInt(args[4]) : 1;
        // ND4J frees off-heap arrays when their Java objects are collected; with "gc" every step
        // ends with a collection so the figures show live memory, not uncollected garbage
        boolean gc = args.length > 5 && args[5].equals("gc");
        System.out.println("start: " + memory());
        long t0 = System.nanoTime();
        LlamaForCausalLM m = switch (mode) {
            case "fp32" -> LlamaForCausalLM.load(dir);
            case "nf4" -> QuantizedModels.loadLlama(dir, QuantConfig.nf4());
            default -> throw new IllegalArgumentException("mode must be fp32 or nf4, got " + mode);
        };
        if (gc) {
            System.gc();
            Thread.sleep(500);
        }
        System.out.printf(Locale.ROOT, "loaded %s (%s) in %.1f s: %,d parameters (%s); %s%n", dir, mode, (System.nanoTime() - t0) / 1e9,
                m.numParameters(), Quantizer.stats(m), memory());
        PeftModel pm = Peft.apply(m, LoraConfig.builder().r(8).loraAlpha(16).allLinear().build());
        System.out.println(pm.printTrainableParameters());
        int vocab = m.vocabSize();
        long[] ids = new long[batch * seq];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (i * 7919L + 13) % vocab;
        }
        INDArray input = Nd4j.createFromArray(ids).reshape(batch, seq).castTo(DataType.INT64);
        INDArray targets = Nd4j.createUninitialized(DataType.INT64, batch, seq);
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < seq; t++) {
                targets.putScalar(b, t, t + 1 < seq ? input.getLong(b, t + 1) : Ops.IGNORE_INDEX);
            }
        }
        m.train();
        AdamW opt = new AdamW(pm.trainableParameters(), 1e-3, 0.0);
        for (int s = 0; s < steps; s++) {
            long a = System.nanoTime();
            Tensor loss = Ops.crossEntropy(m.forward(input, null), targets, Ops.Reduction.MEAN);
            loss.backward();
            opt.step();
            opt.zeroGrad();
            double secs = (System.nanoTime() - a) / 1e9;
            System.out.printf(Locale.ROOT, "step %d: loss %.4f, %.1f s; %s%n", s + 1, loss.item(), secs, memory());
            if (gc) {
                loss = null;
                System.gc();
                Thread.sleep(500);
            }
        }
        System.out.println("final (" + mode + "): " + memory());
    }
}
