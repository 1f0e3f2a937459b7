package org.peft4j.adapter;

import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.nn.Parameter;

import java.util.Map;

final class PresetSetup {
    static Map<String, Parameter> setUp(BertForSequenceClassification m, String preset, long seed) {
        BottleneckAdapters.add(m, preset, BnConfig.preset(preset), seed);
        BottleneckAdapters.trainAdapter(m, preset);
        m.child("classifier").unfreeze();
        return m.namedTrainableParameters();
    }
}
