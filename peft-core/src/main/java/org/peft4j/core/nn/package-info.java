/**
 * Neural-network layers on the {@link org.peft4j.core.tensor.Tensor} autograd, with Hugging Face
 * parameter names.
 *
 * <ul>
 *   <li>{@link org.peft4j.core.nn.Module} / {@link org.peft4j.core.nn.Parameter}: the named tree
 *       (dotted names, replace, train/eval, freeze, state dicts); {@link org.peft4j.core.nn.ModuleList}
 *       for numbered layers ({@code encoder.layer.3});</li>
 *   <li>{@link org.peft4j.core.nn.Linear} (also GPT-2 Conv1D via {@code fanInFanOut}),
 *       {@link org.peft4j.core.nn.Embedding}, {@link org.peft4j.core.nn.LayerNorm},
 *       {@link org.peft4j.core.nn.RMSNorm}, {@link org.peft4j.core.nn.Dropout},
 *       {@link org.peft4j.core.nn.Activation} (by {@code hidden_act} name); each copies itself
 *       ({@link org.peft4j.core.nn.Module#deepCopy()}, for {@code modules_to_save});</li>
 *   <li>the shapes adapters rely on: {@link org.peft4j.core.nn.LinearLayer} (every linear layer,
 *       fp32 or quantized: sizes, bias, dense {@code [out, in]} weight read/write for merging) and
 *       {@link org.peft4j.core.nn.EmbeddingLayer} (what models ask their embedding children for);</li>
 *   <li>{@link org.peft4j.core.nn.StateDictLoader}: the one strict loader of named tensors
 *       (missing, unexpected and mis-shaped keys named with both shapes and the file);</li>
 *   <li>feed-forward blocks {@link org.peft4j.core.nn.Mlp} ({@code down(act(up(x)))}) and
 *       {@link org.peft4j.core.nn.SwiGluMlp} ({@code down(act(gate(x))·up(x))}) with caller-chosen child names;</li>
 *   <li>attention: the layer around the fused core
 *       {@link org.peft4j.core.tensor.ScaledDotProductAttention} (an op in {@code tensor}, with its
 *       {@link org.peft4j.core.tensor.AttentionMask}): {@link org.peft4j.core.nn.RotaryEmbedding}, {@link org.peft4j.core.nn.KVCache},
 *       {@link org.peft4j.core.nn.AttentionContext} (per-forward padding mask, position offset,
 *       per-layer prefixes and caches) and {@link org.peft4j.core.nn.MultiHeadAttention}
 *       (BERT / LLaMA / GPT-2 layouts).</li>
 * </ul>
 *
 * <p>Modules look their children up by name at every forward, so a PEFT method that replaces a
 * child ({@code model.replace("…self_attn.q_proj", lora)}) changes the computation without the
 * parent knowing. Frozen parameters get no gradient buffer and no weight-gradient matmul.
 * Randomness (initialisation, dropout) always comes from an explicit {@link org.peft4j.core.tensor.Rng}.
 */
package org.peft4j.core.nn;
