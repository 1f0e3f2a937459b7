package org.peft4j.core.peft;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.tensor.Rng;
import org.peft4j.lora.LoraConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A save that fails after writing part of the folder leaves the previous folder byte for byte. */
class AtomicSaveTest {

    @TempDir
    Path tmp;

    static final class Net extends Module {
        Net() {
            Rng rng = new Rng(1);
            registerModule("fc1", new Linear(4, 4, true, rng));
            registerModule("fc2", new Linear(4, 2, true, rng));
        }
    }

    @AfterEach
    void clearHook() {
        PeftModel.beforeCommitHook = null;
    }

    private static Map<String, byte[]> snapshot(Path dir) throws IOException {
        Map<String, byte[]> out = new TreeMap<>();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) {
                out.put(dir.relativize(p).toString(), Files.readAllBytes(p));
            }
        }
        return out;
    }

    @Test
    void failedSaveLeavesThePreviousFolderIntact() throws IOException {
        PeftModel pm = Peft.apply(new Net(), LoraConfig.builder().r(2).targetModules("fc1").build());
        pm.addAdapter("second", LoraConfig.builder().r(1).targetModules("fc2").build());
        Path dir = tmp.resolve("adapters");
        pm.save(dir);
        Map<String, byte[]> before = snapshot(dir);
        assertEquals(4, before.size());

        // change the adapter, then fail after every file of the new folder was written
        ((org.peft4j.lora.LoraLinear) pm.baseModel().get("fc1")).loraB("default").setValue(Nd4j.ones(4, 2));
        PeftModel.beforeCommitHook = staging -> {
            assertTrue(Files.exists(staging.resolve("second/adapter_model.safetensors")), "the staging folder is complete");
            throw new IllegalStateException("injected failure before commit");
        };
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> pm.save(dir));
        assertEquals("injected failure before commit", e.getMessage());
        Map<String, byte[]> after = snapshot(dir);
        assertEquals(before.keySet(), after.keySet());
        before.forEach((k, v) -> assertArrayEquals(v, after.get(k), k + " changed"));
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of("adapters"), s.map(p -> p.getFileName().toString()).toList(), "no staging folder left behind");
        }

        // without the failure, the new content replaces the old one as a whole
        PeftModel.beforeCommitHook = null;
        pm.save(dir);
        assertTrue(!java.util.Arrays.equals(before.get("adapter_model.safetensors"), snapshot(dir).get("adapter_model.safetensors")));
    }
}
