/**
 * The T5 family ({@code t5}, {@code mt5}; v1.0, v1.1 and FLAN-T5 are configs of it):
 * {@link org.peft4j.core.model.t5.T5Config} from {@code config.json},
 * {@link org.peft4j.core.model.t5.T5ForConditionalGeneration} (shared embedding, encoder and
 * decoder {@link org.peft4j.core.model.t5.T5Stack}s of {@link org.peft4j.core.model.t5.T5Block}s,
 * LM head), {@link org.peft4j.core.model.t5.T5Attention} with the bucketed relative position bias,
 * and {@link org.peft4j.core.model.t5.T5Family} in the model-family registry. Checked against
 * {@code scripts/reference/make_t5_fixtures.py}.
 */
package org.peft4j.core.model.t5;
