/**
 * IA3 and bottleneck adapters.
 *
 * <p><b>IA3</b> (Hugging Face PEFT's {@code tuners/ia3}, {@code peft_type = "IA3"}): {@link org.peft4j.adapter.Ia3Method}
 * (found by {@link java.util.ServiceLoader}, so {@code PeftModel.load}/{@code save}, merging, mixed batches and
 * {@code modules_to_save} come from peft-core), {@link org.peft4j.adapter.Ia3Config},
 * {@link org.peft4j.adapter.Ia3Layer}. Folders are PEFT's ({@code adapter_model.safetensors} with
 * {@code base_model.model.<path>.ia3_l}).
 *
 * <p><b>Bottleneck adapters</b> (AdapterHub {@code adapters} v1.2): {@link org.peft4j.adapter.BnConfig} (the
 * {@code seq_bn}, {@code double_seq_bn}, {@code par_bn} presets and the general form),
 * {@link org.peft4j.adapter.BottleneckAdapters} (add / activate / train / save / load in AdapterHub's folder
 * layout), {@link org.peft4j.adapter.BottleneckLayer} (the module placed in a block's
 * {@link org.peft4j.core.nn.ResidualHookSite} slot) and {@link org.peft4j.adapter.BottleneckAdapter} (one
 * adapter's math). They are not a PEFT method (AdapterHub folders have no {@code peft_type}), so they do
 * not go through {@code PeftModel}.
 */
package org.peft4j.adapter;
