package org.peft4j.core.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.peft4j.core.tensor.AttentionMask;
import org.peft4j.core.tensor.Tensor;

import java.util.Arrays;

/**
 * What every attention layer of one forward pass needs besides its input: the key padding mask,
 * the position of the first input token, an optional external key/value prefix per layer
 * (prefix tuning) and an optional {@link KVCache} per layer (decoding). One context is passed to
 * all layers; each {@link MultiHeadAttention} picks its own entries by its layer index.
 *
 * <p>Immutable; {@code with…} methods return modified copies.
 *
 * <ul>
 *   <li>{@code keyPaddingMask [batch, keys]}: Hugging Face's {@code attention_mask} (1 = real token,
 *       0 = padding) over the cached plus current tokens; it may also include leading prefix
 *       columns ({@code [batch, prefix + keys]}); prefix keys are otherwise always visible. Null = no padding.</li>
 *   <li>{@code positionOffset}: absolute position of the first input token, used by rotary embeddings
 *       (and by families for learned positions). When decoding with a cache, set it to the number of
 *       tokens already cached (Hugging Face also counts prefix-tuning tokens here, which makes
 *       real tokens start at position {@code prefixLength}).</li>
 *   <li>{@code prefixKeys[layer]}, {@code prefixValues[layer]}: {@code [batch, kvHeads, P, headDim]}
 *       tensors prepended to that layer's keys/values; gradients flow into them.</li>
 *   <li>{@code caches[layer]}: appended to and read by that layer.</li>
 * </ul>
 */
public final class AttentionContext {
    private static final AttentionContext EMPTY = new AttentionContext(null, 0, null, null, null, null);

    private final INDArray keyPaddingMask;
    private final long positionOffset;
    private final Tensor[] prefixKeys;
    private final Tensor[] prefixValues;
    private final KVCache[] caches;
    /** When non-null, each layer stores its attention probabilities here (see {@link #withAttentionRecording}). */
    private final Tensor[] attentions;
    /** Masks shared by the layers of one forward pass (same rule, same shapes → built once). */
    private final java.util.concurrent.ConcurrentHashMap<String, AttentionMask> masks = new java.util.concurrent.ConcurrentHashMap<>();

    private AttentionContext(INDArray keyPaddingMask, long positionOffset, Tensor[] prefixKeys, Tensor[] prefixValues,
                             KVCache[] caches, Tensor[] attentions) {
        this.keyPaddingMask = keyPaddingMask;
        this.positionOffset = positionOffset;
        this.prefixKeys = prefixKeys;
        this.prefixValues = prefixValues;
        this.caches = caches;
        this.attentions = attentions;
    }

    /** No padding, position 0, no prefix, no cache. */
    public static AttentionContext empty() {
        return EMPTY;
    }

    /** Only a key padding mask {@code [batch, keys]} (may be null). */
    public static AttentionContext of(INDArray keyPaddingMask) {
        return EMPTY.withKeyPaddingMask(keyPaddingMask);
    }

    public AttentionContext withKeyPaddingMask(INDArray mask) {
        if (mask != null && mask.rank() != 2) {
            throw new IllegalArgumentException("attention mask must be [batch, keys], got " + Arrays.toString(mask.shape()));
        }
        return new AttentionContext(mask, positionOffset, prefixKeys, prefixValues, caches, attentions);
    }

    public AttentionContext withPositionOffset(long offset) {
        if (offset < 0) {
            throw new IllegalArgumentException("position offset must be >= 0, got " + offset);
        }
        return new AttentionContext(keyPaddingMask, offset, prefixKeys, prefixValues, caches, attentions);
    }

    /**
     * Per-layer key/value prefixes, indexed by layer; an entry may be null (no prefix for that
     * layer), and both arrays must have equal length and matching nulls.
     */
    public AttentionContext withPrefix(Tensor[] keys, Tensor[] values) {
        if ((keys == null) != (values == null) || (keys != null && keys.length != values.length)) {
            throw new IllegalArgumentException("prefix keys and values must be given per layer with equal counts");
        }
        if (keys != null) {
            for (int i = 0; i < keys.length; i++) {
                if ((keys[i] == null) != (values[i] == null)) {
                    throw new IllegalArgumentException("layer " + i + ": prefix keys and values must both be set or both be null");
                }
                if (keys[i] != null && (keys[i].rank() != 4 || values[i].rank() != 4 || keys[i].size(2) != values[i].size(2))) {
                    throw new IllegalArgumentException("layer " + i + ": prefix keys/values must be [batch, kvHeads, P, headDim], got "
                            + Arrays.toString(keys[i].shape()) + " and " + Arrays.toString(values[i].shape()));
                }
            }
        }
        return new AttentionContext(keyPaddingMask, positionOffset,
                keys == null ? null : keys.clone(), values == null ? null : values.clone(), caches, attentions);
    }

    /** Per-layer caches, indexed by layer (entries may be null). */
    public AttentionContext withCaches(KVCache[] caches) {
        return new AttentionContext(keyPaddingMask, positionOffset, prefixKeys, prefixValues,
                caches == null ? null : caches.clone(), attentions);
    }

    /**
     * A copy that asks every attention layer {@code 0..numLayers-1} to record its attention
     * probabilities {@code [batch, heads, T, keys]} (through the slower composed attention path,
     * differentiable); read them with {@link #recordedAttentions()} after the forward pass. Use a
     * fresh context per forward pass.
     */
    public AttentionContext withAttentionRecording(int numLayers) {
        if (numLayers < 0) {
            throw new IllegalArgumentException("number of layers must be >= 0, got " + numLayers);
        }
        return new AttentionContext(keyPaddingMask, positionOffset, prefixKeys, prefixValues, caches, new Tensor[numLayers]);
    }

    /** True when attention layers should hand their probabilities to {@link #recordAttention}. */
    public boolean recordsAttentions() {
        return attentions != null;
    }

    /** Called by attention layer {@code layer} with its probabilities {@code [batch, heads, T, keys]}. */
    public void recordAttention(int layer, Tensor probabilities) {
        if (attentions == null) {
            throw new IllegalStateException("this attention context does not record attentions");
        }
        if (layer < 0 || layer >= attentions.length) {
            throw new IllegalArgumentException("attention layer index " + layer + " outside [0, " + attentions.length + ")");
        }
        attentions[layer] = probabilities;
    }

    /** The recorded probabilities by layer (entries null for layers that did not run); empty when not recording. */
    public java.util.List<Tensor> recordedAttentions() {
        return attentions == null ? java.util.List.of() : java.util.Collections.unmodifiableList(Arrays.asList(attentions.clone()));
    }

    /** {@code n} fresh, empty caches (one per layer). */
    public static KVCache[] newCaches(int n) {
        KVCache[] c = new KVCache[n];
        for (int i = 0; i < n; i++) {
            c[i] = new KVCache();
        }
        return c;
    }

    /** {@code [batch, keys]} or null. */
    public INDArray keyPaddingMask() {
        return keyPaddingMask;
    }

    public long positionOffset() {
        return positionOffset;
    }

    /** {@code [batch, kvHeads, P, headDim]} for {@code layer}, or null. */
    public Tensor prefixKeys(int layer) {
        return prefixKeys == null || layer < 0 || layer >= prefixKeys.length ? null : prefixKeys[layer];
    }

    /** {@code [batch, kvHeads, P, headDim]} for {@code layer}, or null. */
    public Tensor prefixValues(int layer) {
        return prefixValues == null || layer < 0 || layer >= prefixValues.length ? null : prefixValues[layer];
    }

    /** Number of prefix keys for {@code layer} (0 when none). */
    public long prefixLength(int layer) {
        Tensor k = prefixKeys(layer);
        return k == null ? 0 : k.size(2);
    }

    /** The cache of {@code layer}, or null. */
    public KVCache cache(int layer) {
        return caches == null || layer < 0 || layer >= caches.length ? null : caches[layer];
    }

    /** Tokens already cached by {@code layer} (0 without a cache). */
    public long pastLength(int layer) {
        KVCache c = cache(layer);
        return c == null ? 0 : c.length();
    }

    /**
     * The mask for a layer with the given rule, {@code past} cached keys and {@code prefixLength}
     * prefix keys, combined with this context's padding mask. Layers asking for the same one share
     * it, so it is materialised once per forward pass.
     */
    public AttentionMask mask(boolean causal, long past, long prefixLength) {
        String key = causal + ":" + past + ":" + prefixLength;
        return masks.computeIfAbsent(key, k -> (causal ? AttentionMask.causal(past) : AttentionMask.bidirectional())
                .withPrefix(prefixLength)
                .withKeyPadding(keyPaddingMask));
    }

    /** True when any layer has a prefix. */
    public boolean hasPrefix() {
        if (prefixKeys == null) {
            return false;
        }
        for (Tensor t : prefixKeys) {
            if (t != null) {
                return true;
            }
        }
        return false;
    }
}
