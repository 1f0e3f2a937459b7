package org.peft4j.core.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Checkpoint folders whose weights are PyTorch {@code .bin} files (written by Debian's
 * python3-torch from the bert-tiny fixture, {@code scripts/make_torch_bin_fixtures.py}) read
 * through {@link CheckpointWeights} exactly like their safetensors twin.
 */
class TorchBinCheckpointTest {
    @TempDir
    Path tmp;

    private Path copy(String folder, String... files) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve(folder));
        for (String f : files) {
            Files.write(dir.resolve(f), IoTestSupport.resource("/io/torch/" + folder + "/" + f));
        }
        return dir;
    }

    private Map<String, INDArray> safetensorsTwin() throws IOException {
        Path st = Files.createDirectories(tmp.resolve("st"));
        Files.write(st.resolve("model.safetensors"), IoTestSupport.resource("/fixtures/bert-tiny/model.safetensors"));
        return SafeTensors.load(st.resolve("model.safetensors"));
    }

    private static void assertSameTensors(Map<String, INDArray> expected, CheckpointWeights w) {
        assertEquals(expected.size(), w.size());
        for (Map.Entry<String, INDArray> e : expected.entrySet()) {
            INDArray got = w.get(e.getKey());
            assertArrayEquals(e.getValue().shape(), got.shape(), e.getKey());
            assertArrayEquals(IoTestSupport.rawBytes(e.getValue()), IoTestSupport.rawBytes(got), e.getKey());
        }
    }

    @Test
    void modelFolderWithPytorchModelBinReadsLikeItsSafetensors() throws IOException {
        Path dir = copy("bert-tiny-bin", "config.json", "pytorch_model.bin");
        assertTrue(HfFolder.hasWeights(dir));
        try (CheckpointWeights w = CheckpointWeights.open(dir)) {
            assertEquals(dir.resolve("pytorch_model.bin"), w.source());
            assertSameTensors(safetensorsTwin(), w);
        }
    }

    @Test
    void shardedPytorchIndexReadsLikeItsSafetensors() throws IOException {
        Path dir = copy("bert-tiny-sharded", "config.json", "pytorch_model.bin.index.json",
                "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin");
        try (CheckpointWeights w = CheckpointWeights.open(dir)) {
            assertTrue(w.isSharded());
            assertEquals(2, w.files().size());
            assertSameTensors(safetensorsTwin(), w);
        }
    }

    @Test
    void shardNamesThatLeaveTheFolderAreRefused() throws IOException {
        Path dir = copy("bert-tiny-sharded", "config.json", "pytorch_model.bin.index.json",
                "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin");
        Path index = dir.resolve("pytorch_model.bin.index.json");
        String json = Files.readString(index);
        Files.writeString(index, json.replace("\"pytorch_model-00002-of-00002.bin\"", "\"../outside.bin\""));
        CheckpointException e = assertThrows(CheckpointException.class, () -> CheckpointWeights.open(dir));
        assertTrue(e.getMessage().contains("'../outside.bin'") && e.getMessage().contains("outside the checkpoint folder"),
                e.getMessage());

        // a link inside the folder that points out of it
        Path outside = Files.createDirectories(tmp.resolve("elsewhere")).resolve("shard.bin");
        Files.move(dir.resolve("pytorch_model-00002-of-00002.bin"), outside);
        Files.createSymbolicLink(dir.resolve("linked.bin"), outside);
        Files.writeString(index, json.replace("\"pytorch_model-00002-of-00002.bin\"", "\"linked.bin\""));
        e = assertThrows(CheckpointException.class, () -> CheckpointWeights.open(dir));
        assertTrue(e.getMessage().contains("'linked.bin'") && e.getMessage().contains("is a link to"), e.getMessage());
    }
}
