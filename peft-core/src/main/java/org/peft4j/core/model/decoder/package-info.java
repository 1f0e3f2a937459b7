/**
 * What the decoder families share: the {@link org.peft4j.core.model.decoder.CausalLM} contract the
 * generator drives, {@link org.peft4j.core.model.decoder.DecoderLM} (forward, save), making and
 * loading a family's model ({@link org.peft4j.core.model.decoder.DecoderFamily}, a
 * {@link org.peft4j.core.model.ModelFamily} of the registry), config parsing
 * ({@link org.peft4j.core.model.decoder.ConfigFields}), input validation and padding-aware
 * positions ({@link org.peft4j.core.model.decoder.DecoderInputs}), and
 * {@link org.peft4j.core.model.decoder.CausalLMs#load} which picks the family from {@code model_type},
 * and transformers' decoder sequence classifiers
 * ({@link org.peft4j.core.model.decoder.DecoderForSequenceClassification}: {@code score} at the last
 * non-padding token), which a family loads when {@code architectures} names one.
 */
package org.peft4j.core.model.decoder;
