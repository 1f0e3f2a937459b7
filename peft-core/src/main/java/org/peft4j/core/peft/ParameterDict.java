package org.peft4j.core.peft;

import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A container of named parameters (PyTorch's {@code nn.ParameterDict}): one tensor per adapter
 * name, so names read {@code lora_embedding_A.<adapter>} with no {@code .weight} suffix, as in PEFT.
 */
public class ParameterDict extends Module {

    public ParameterDict() {
    }

    public ParameterDict(Map<String, Parameter> entries) {
        entries.forEach(this::put);
    }

    public Parameter put(String name, Parameter p) {
        return registerParameter(name, p);
    }

    public Parameter getParameter(String name) {
        Parameter p = parameter(name);
        if (p == null) {
            throw new IllegalArgumentException("no parameter '" + name + "' (entries: " + directParameters().keySet() + ")");
        }
        return p;
    }

    public boolean containsKey(String name) {
        return parameter(name) != null;
    }

    /** A new dict with every entry but {@code name}. */
    public ParameterDict without(String name) {
        Map<String, Parameter> rest = new LinkedHashMap<>(directParameters());
        rest.remove(name);
        return new ParameterDict(rest);
    }
}
