package org.peft4j.core.peft;

import org.peft4j.core.nn.Embedding;
import org.peft4j.core.nn.LayerNorm;
import org.peft4j.core.nn.Linear;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.nn.RMSNorm;

/**
 * Deep copies of modules (fresh parameters with copied values) for {@code modules_to_save}.
 * Built in for the plain nn layers ({@link Linear}, {@link Embedding}, {@link LayerNorm},
 * {@link RMSNorm}); any other module must implement {@link CopyableModule}.
 */
public final class ModuleCopies {
    private ModuleCopies() {
    }

    public static Module deepCopy(Module m) {
        Module copy;
        if (m instanceof CopyableModule c) {
            copy = c.deepCopy();
        } else if (m.getClass() == Linear.class) {
            Linear l = (Linear) m;
            copy = new Linear(l.weight().value().dup('c'), l.bias() == null ? null : l.bias().value().dup('c'), l.isFanInFanOut());
        } else if (m.getClass() == Embedding.class) {
            Embedding e = (Embedding) m;
            copy = new Embedding(e.weight().value().dup('c'), e.paddingIdx());
        } else if (m.getClass() == LayerNorm.class) {
            LayerNorm n = (LayerNorm) m;
            LayerNorm c = new LayerNorm(n.dim(), n.eps(), n.bias() != null);
            c.weight().setValue(n.weight().value().dup('c'));
            if (n.bias() != null) {
                c.bias().setValue(n.bias().value().dup('c'));
            }
            copy = c;
        } else if (m.getClass() == RMSNorm.class) {
            RMSNorm n = (RMSNorm) m;
            RMSNorm c = new RMSNorm(n.dim(), n.eps());
            c.weight().setValue(n.weight().value().dup('c'));
            copy = c;
        } else {
            throw new IllegalArgumentException("cannot copy a " + m.getClass().getName() + " for modules_to_save: only Linear, "
                    + "Embedding, LayerNorm, RMSNorm and modules implementing CopyableModule can be copied");
        }
        if (copy == m) {
            throw new IllegalStateException(m.getClass().getName() + ".deepCopy() returned the module itself");
        }
        for (Parameter p : copy.parameters()) {
            p.setTrainable(true);
        }
        if (!m.isTraining()) {
            copy.eval();
        }
        return copy;
    }
}
