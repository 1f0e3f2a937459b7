package org.peft4j.prompt;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.NoGrad;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Clear errors naming the key: too many positions, a folder for another model, TEXT init without text. */
class PromptBadInputTest {

    @Test
    void virtualTokensPlusInputBeyondPositionsNamesNumVirtualTokens() {
        DecoderLM model = PromptFixtures.decoder("gpt2");   // n_positions 32
        PeftModel pm = Peft.apply(model, new PromptTuningConfig().setNumVirtualTokens(8));
        long[][] ids = new long[1][30];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> {
            try (NoGrad ignored = NoGrad.enter()) {
                model.forward(Nd4j.createFromArray(ids), null);
            }
        });
        assertTrue(e.getMessage().contains("num_virtual_tokens 8") && e.getMessage().contains("32 positions"), e.getMessage());
        assertEquals(1, pm.adapterNames().size());

        DecoderLM m2 = PromptFixtures.decoder("gpt2");
        e = assertThrows(IllegalArgumentException.class, () -> Peft.apply(m2, new PrefixTuningConfig().setNumVirtualTokens(40)));
        assertTrue(e.getMessage().contains("num_virtual_tokens 40"), e.getMessage());
    }

    @Test
    void folderForAnotherModelNamesTokenDimOrNumLayers(@TempDir Path tmp) throws Exception {
        Path src = PromptFixtures.prompt("llama-gqa-prefix");
        for (String[] edit : new String[][]{{"\"token_dim\": 16", "\"token_dim\": 24", "token_dim 24"},
                {"\"num_layers\": 2", "\"num_layers\": 3", "num_layers 3"}}) {
            Path dir = Files.createDirectories(tmp.resolve(edit[2].replace(' ', '_')));
            String json = Files.readString(src.resolve(PeftModel.CONFIG_NAME), StandardCharsets.UTF_8);
            assertTrue(json.contains(edit[0]), json);
            Files.writeString(dir.resolve(PeftModel.CONFIG_NAME), json.replace(edit[0], edit[1]), StandardCharsets.UTF_8);
            Files.copy(src.resolve(PeftModel.WEIGHTS_NAME), dir.resolve(PeftModel.WEIGHTS_NAME));
            DecoderLM model = PromptFixtures.decoder("llama-gqa");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PeftModel.load(model, dir));
            assertTrue(e.getMessage().contains(edit[2]) && e.getMessage().contains("does not match"), e.getMessage());
            // the model is left as it was: no prompt layer
            assertEquals(null, PromptLearningMethod.promptLayer(model));
        }
        // the GPT-2 folder into LLaMA: token_dim 16 vs 32
        DecoderLM llama = PromptFixtures.decoder("llama-gqa");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> PeftModel.load(llama, PromptFixtures.prompt("gpt2-prompt")));
        assertTrue(e.getMessage().contains("token_dim 16"), e.getMessage());
    }

    @Test
    void textInitWithoutTextNamesTheKey() {
        PromptTuningConfig c = new PromptTuningConfig().setInit(PromptTuningConfig.Init.TEXT);
        c.setNumVirtualTokens(4);
        DecoderLM model = PromptFixtures.decoder("gpt2");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Peft.apply(model, c));
        assertTrue(e.getMessage().contains("prompt_tuning_init_text"), e.getMessage());
    }

    @Test
    void textAndSampleVocabInitCopyWordEmbeddingRows() {
        DecoderLM model = PromptFixtures.decoder("gpt2");
        var words = model.namedParameters().get("transformer.wte.weight").value().dup();
        PromptTuningConfig c = new PromptTuningConfig().setInit(PromptTuningConfig.Init.TEXT).setInitText("ab", new int[]{3, 7});
        c.setNumVirtualTokens(5);
        PeftModel pm = Peft.apply(model, c);
        var table = PromptLearningMethod.requireLayer(model).source("default").output().value();
        int[] rows = {3, 7, 3, 7, 3};   // PEFT: the ids repeated, then cut to n
        for (int i = 0; i < rows.length; i++) {
            assertEquals(0.0, table.getRow(i).sub(words.getRow(rows[i])).amaxNumber().doubleValue(), 0.0, "row " + i);
        }
        assertTrue(pm.toString() != null);
    }
}
