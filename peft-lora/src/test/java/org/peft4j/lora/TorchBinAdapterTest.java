package org.peft4j.lora;

import org.peft4j.core.testing.RepoFixtures;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.io.SafeTensors;
import org.peft4j.core.nn.Module;
import org.peft4j.core.peft.PeftModel;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * PEFT's legacy adapter format: {@code fixtures/lora/bert-qv-bin/adapter} holds the bert-qv adapter
 * as {@code adapter_model.bin}, written by Debian's python3-torch
 * ({@code scripts/make_torch_bin_fixtures.py}); loaded through the restricted unpickler it must give
 * the bert-qv reference outputs (float64 reference, max abs 1e-4) like the safetensors folder does.
 */
class TorchBinAdapterTest {
    @Test
    void adapterModelBinGivesTheReferenceOutputs() throws IOException {
        Path bin = Fixtures.lora("bert-qv-bin").resolve("adapter");
        assertTrue(Files.isRegularFile(bin.resolve(PeftModel.TORCH_WEIGHTS_NAME)));
        assertFalse(Files.exists(bin.resolve(PeftModel.WEIGHTS_NAME)));
        Path ref = Fixtures.lora("bert-qv");
        Module base = RepoFixtures.loadBase("bert", "bert-tiny");
        Map<String, INDArray> io = SafeTensors.load(ref.resolve("expected.safetensors"));
        PeftModel.load(base, bin);
        INDArray got = RepoFixtures.output(base, io.get("input_ids"), io.get("attention_mask"), io.get("token_type_ids"));
        double err = got.castTo(DataType.DOUBLE).sub(io.get("output").castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
        assertTrue(err <= 1e-4, "max |peft4j - reference| = " + err);
    }
}
