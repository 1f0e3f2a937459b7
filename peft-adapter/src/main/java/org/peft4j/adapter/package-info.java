/**
 * IA3, bottleneck adapters and AdapterFusion.
 *
 * <p><b>IA3</b> (Hugging Face PEFT's {@code tuners/ia3}, {@code peft_type = "IA3"}): {@link org.peft4j.adapter.Ia3Method}
 * (found by {@link java.util.ServiceLoader}, so {@code PeftModel.load}/{@code save}, merging, mixed batches and
 * {@code modules_to_save} come from peft-core), {@link org.peft4j.adapter.Ia3Config},
 * {@link org.peft4j.adapter.Ia3Layer}. Folders are PEFT's ({@code adapter_model.safetensors} with
 * {@code base_model.model.<path>.ia3_l}).
 *
 * <p><b>Bottleneck adapters and AdapterFusion</b> (AdapterHub {@code adapters} v1.2), a {@code PeftMethod} too:
 * {@link org.peft4j.adapter.BottleneckMethod} ({@code peft_type} {@code BOTTLENECK} inside peft4j),
 * {@link org.peft4j.adapter.BottleneckConfig} (an adapter's {@link org.peft4j.adapter.BnConfig} — the
 * {@code seq_bn}, {@code double_seq_bn}, {@code par_bn} presets and the general form — or a fusion's
 * {@link org.peft4j.adapter.FusionConfig} over named adapters), {@link org.peft4j.adapter.BottleneckLayer} (the
 * {@code BaseAdapterLayer} placed in a block's {@link org.peft4j.core.nn.ResidualHookSite} slot),
 * {@link org.peft4j.adapter.BottleneckAdapter} (one adapter's math), {@link org.peft4j.adapter.AdapterFusionLayer}
 * (AdapterHub's {@code BertFusion}) and {@link org.peft4j.adapter.Compositions} ({@code Stack}, {@code Average}).
 * Their folders are AdapterHub's, written and read by peft-core's {@link org.peft4j.core.peft.AdapterHubLayout}.
 */
package org.peft4j.adapter;
