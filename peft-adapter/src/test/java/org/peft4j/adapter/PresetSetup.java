package org.peft4j.adapter;

import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The presets as {@code peft4j compare} sets them up (FineTuning.setUp): through PeftModel, the new classifier trained in full. */
final class PresetSetup {
    private PresetSetup() {
    }

    /** The trainable tensors under the model's own state-dict keys ({@code bert.…}, {@code classifier.weight}). */
    static Map<String, Parameter> setUp(BertForSequenceClassification m, String preset, long seed) {
        BottleneckConfig c = BottleneckConfig.preset(preset);
        c.setModulesToSave(List.of("classifier"));
        c.setSeed(seed);
        PeftModel pm = Peft.apply(m, c, preset);
        Map<String, Parameter> out = new LinkedHashMap<>();
        pm.trainableParameters().forEach((k, p) -> out.put(k.substring(PeftModel.MODEL_PREFIX.length())
                .replace("classifier.modules_to_save." + preset + ".", "classifier."), p));
        return out;
    }
}
