package org.peft4j.core.peft;

import org.peft4j.core.nn.Module;

/**
 * A module that can produce an independent deep copy of itself (fresh parameters holding copies of
 * the values, same training flag). {@code modules_to_save} needs this to keep the original module
 * frozen while a trainable copy is fine-tuned.
 */
public interface CopyableModule {
    Module deepCopy();
}
