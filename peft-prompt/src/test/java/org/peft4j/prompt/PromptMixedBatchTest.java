package org.peft4j.prompt;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.model.decoder.DecoderLM;
import org.peft4j.core.peft.MixedBatch;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.tensor.NoGrad;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A batch whose rows name different adapters cannot run a prompt method (the virtual tokens or
 * prefix are one adapter's for the whole batch): PEFT refuses {@code adapter_names} with prompt
 * learning, and so does peft4j, with an error naming the method and the per-row names.
 */
class PromptMixedBatchTest {

    @Test
    void mixedAdapterBatchWithPromptMethodsIsRefused() {
        for (PromptLearningConfig c : new PromptLearningConfig[]{new PromptTuningConfig(), new PrefixTuningConfig(),
                new PromptEncoderConfig()}) {
            c.setNumVirtualTokens(2);
            DecoderLM model = PromptFixtures.decoder("gpt2");
            PeftModel pm = Peft.apply(model, c);
            PromptLearningConfig other = (PromptLearningConfig) c.copy();
            pm.addAdapter("other", other);
            List<String> rows = List.of("default", "other");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> pm.mixedBatch(rows));
            assertTrue(e.getMessage().contains("mixed-adapter batches") && e.getMessage().contains(c.peftType())
                    && e.getMessage().contains("[default, other]"), e.getMessage());

            // a routing scope opened past PeftModel (as an adapter layer would read it) is refused at the forward
            long[][] ids = {{1, 2, 3}, {4, 5, 6}};
            try (MixedBatch ignored = MixedBatch.open(rows); NoGrad ng = NoGrad.enter()) {
                IllegalArgumentException f = assertThrows(IllegalArgumentException.class,
                        () -> model.forward(Nd4j.createFromArray(ids), null));
                assertTrue(f.getMessage().contains("mixed-adapter batches"), f.getMessage());
            }
            // one adapter for the whole batch still runs
            try (NoGrad ng = NoGrad.enter()) {
                assertEquals(2, model.forward(Nd4j.createFromArray(ids), null).size(0));
            }
        }
    }
}
