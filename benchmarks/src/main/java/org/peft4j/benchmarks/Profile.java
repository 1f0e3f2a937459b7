package org.peft4j.benchmarks;

import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.model.bert.BertConfig;

/**
 * Quick step timer for one training mode: {@code Profile <full|lora> [steps] [dropout]}; prints
 * the mean step time of the steps after two warm-up steps. Used while profiling (e.g. under JFR).
 */
public final class Profile {
    /** Minor page faults of this process so far (/proc/self/stat field 10). */
    static long minorFaults() {
        try {
            String st = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/self/stat"));
            String[] f = st.substring(st.lastIndexOf(')') + 2).split(" ");
            return Long.parseLong(f[7]);
        } catch (java.io.IOException e) {
            return -1;
        }
    }

    public static void main(String[] args) {
        MiniLm.Mode mode = MiniLm.Mode.valueOf(args.length > 0 ? args[0].toUpperCase() : "LORA");
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 10;
        double dropout = args.length > 2 ? Double.parseDouble(args[2]) : 0.1;
        int gcWindow = Integer.getInteger("bench.gcWindow", 0);
        if (gcWindow > 0) {
            Nd4j.getMemoryManager().togglePeriodicGc(true);
            Nd4j.getMemoryManager().setAutoGcWindow(gcWindow);
        }
        BertConfig c = MiniLm.config(dropout);
        MiniLm.Trainer tr = MiniLm.trainer(mode, c, MiniLm.SEED);
        MiniLm.Batch batch = MiniLm.batch(MiniLm.BATCH, MiniLm.SEQ, c.vocabSize(), MiniLm.SEED);
        System.out.println("threads " + Nd4j.getEnvironment().maxMasterThreads() + " trainable " + tr.trainableParameters()
                + " RSS after load " + ProcMem.read().rssMb() + " MB, HWM " + ProcMem.read().hwmMb() + " MB, javacpp "
                + (org.bytedeco.javacpp.Pointer.totalBytes() >> 20) + " MB");
        for (int i = 0; i < 2; i++) {
            tr.step(batch);
        }
        boolean ws = Boolean.getBoolean("bench.workspace");
        org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration wc = org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration.builder()
                .policyAllocation(org.nd4j.linalg.api.memory.enums.AllocationPolicy.STRICT)
                .policyLearning(org.nd4j.linalg.api.memory.enums.LearningPolicy.FIRST_LOOP)
                .policySpill(org.nd4j.linalg.api.memory.enums.SpillPolicy.REALLOCATE)
                .policyReset(org.nd4j.linalg.api.memory.enums.ResetPolicy.BLOCK_LEFT)
                .initialSize(0).build();
        com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        long cpu0 = os.getProcessCpuTime();
        long flt0 = minorFaults();
        long t0 = System.nanoTime();
        for (int i = 0; i < steps; i++) {
            long s = System.nanoTime();
            float loss;
            if (ws) {
                try (org.nd4j.linalg.api.memory.MemoryWorkspace w = Nd4j.getWorkspaceManager().getAndActivateWorkspace(wc, "STEP")) {
                    loss = tr.step(batch);
                }
            } else {
                loss = tr.step(batch);
            }
            if (Boolean.getBoolean("bench.gc")) {
                System.gc();
            }
            System.out.printf("step %d %.1f ms loss %.4f RSS %.0f MB, javacpp %d MB, heap used %d MB%n", i,
                    (System.nanoTime() - s) / 1e6, loss, ProcMem.read().rssMb(),
                    org.bytedeco.javacpp.Pointer.totalBytes() >> 20,
                    (Runtime.getRuntime().totalMemory() - Runtime.getRuntime().freeMemory()) >> 20);
        }
        double ms = (System.nanoTime() - t0) / 1e6 / steps;
        double cpuMs = (os.getProcessCpuTime() - cpu0) / 1e6 / steps;
        System.out.printf("%s mean %.1f ms/step wall, %.1f ms/step process CPU, %.0f tokens/s, %d minor faults/step, VmHWM %.0f MB%n",
                mode, ms, cpuMs, batch.tokens() / (ms / 1000), (minorFaults() - flt0) / steps, ProcMem.read().hwmMb());
    }
}
