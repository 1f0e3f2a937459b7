/**
 * The method-independent PEFT layer: {@link org.peft4j.core.peft.Peft#apply} freezes a model and
 * lets a {@link org.peft4j.core.peft.PeftMethod} (found with {@code ServiceLoader}, keyed by
 * {@code peft_type}) rewrite it; the result is a {@link org.peft4j.core.peft.PeftModel} that
 * names parameters as PEFT does ({@code base_model.model.<path>}), switches, disables, merges and
 * deletes adapters, routes mixed-adapter batches ({@link org.peft4j.core.peft.MixedBatch}), and
 * saves/loads PEFT adapter folders atomically.
 *
 * <p>What a method writes and what it gets: a method module implements
 * {@link org.peft4j.core.peft.PeftMethod} (config class, {@code inject}, key normalisation, extra
 * trained parameters, optional merge / weighted combination / input preparation) and layers that
 * extend {@link org.peft4j.core.peft.BaseAdapterLayer} (its tensors, their saved names, its forward
 * math through {@code adaptedForward}, optionally merge). The base class keeps active adapters,
 * enable/disable, merge records, deletion and the mixed-batch dispatch; {@code PeftModel} walks the
 * {@link org.peft4j.core.peft.AdapterLayer}s once for every operation and loads adapter folders
 * strictly with {@link org.peft4j.core.nn.StateDictLoader}.
 *
 * <p>Shared pieces: {@link org.peft4j.core.peft.PeftConfig} (Jackson, polymorphic on
 * {@code peft_type}; unknown keys warned about and ignored), {@link org.peft4j.core.peft.TargetMatcher}
 * (PEFT's {@code target_modules} rules), {@link org.peft4j.core.peft.ModulesToSaveWrapper}
 * ({@code modules_to_save}, one more adapter layer), {@link org.peft4j.core.peft.PythonJson} (the JSON PEFT writes).
 */
package org.peft4j.core.peft;
