package org.peft4j.quant;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.peft.TargetMatcher;

import java.util.ArrayList;
import java.util.List;

/**
 * What {@link Quantizer} does to a model: the format ({@link QuantType}), the 4-bit block size
 * (a power of two from 32 to 4096, default 64 as in bitsandbytes), double quantization of the
 * 4-bit scales (default on, the QLoRA recipe), the int8 outlier threshold (default 6.0, LLM.int8;
 * 0 = none), which linear layers to quantize ({@code targetModules}: null = every linear layer)
 * and which to leave in fp32 ({@code skipModules}: null = the output head, i.e. a top-level
 * {@code lm_head}, {@code score} or {@code classifier}, as transformers' bitsandbytes integration
 * keeps the head in full precision). Names match a module whose dotted path equals the entry or
 * ends with {@code "." + entry}, as PEFT's {@code target_modules} lists do.
 *
 * <p>{@link #toJson()} gives the {@code quantization_config} object of a saved {@code config.json}
 * with transformers' {@code BitsAndBytesConfig} keys.
 */
public final class QuantConfig {
    /** The head names skipped by default (top-level children only). */
    public static final List<String> DEFAULT_SKIP = List.of(TargetMatcher.LM_HEAD, "score", "classifier");
    public static final int DEFAULT_BLOCK_SIZE = 64;
    public static final float DEFAULT_INT8_THRESHOLD = 6.0f;

    private final QuantType type;
    private final int blockSize;
    private final boolean doubleQuant;
    private final float int8Threshold;
    private final List<String> targetModules;
    private final List<String> skipModules;

    private QuantConfig(Builder b) {
        this.type = b.type;
        this.blockSize = b.blockSize;
        this.doubleQuant = b.doubleQuant;
        this.int8Threshold = b.int8Threshold;
        this.targetModules = b.targetModules == null ? null : List.copyOf(b.targetModules);
        this.skipModules = b.skipModules == null ? null : List.copyOf(b.skipModules);
    }

    /** NF4, block size 64, double quantization: the QLoRA recipe. */
    public static QuantConfig nf4() {
        return builder().build();
    }

    public static QuantConfig fp4() {
        return builder().type(QuantType.FP4).build();
    }

    public static QuantConfig int8() {
        return builder().type(QuantType.INT8).build();
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        Builder b = new Builder();
        b.type = type;
        b.blockSize = blockSize;
        b.doubleQuant = doubleQuant;
        b.int8Threshold = int8Threshold;
        b.targetModules = targetModules;
        b.skipModules = skipModules;
        return b;
    }

    public QuantType type() {
        return type;
    }

    public int blockSize() {
        return blockSize;
    }

    public boolean doubleQuant() {
        return doubleQuant;
    }

    public float int8Threshold() {
        return int8Threshold;
    }

    /** Null means every linear layer (minus {@link #skipModules()}). */
    public List<String> targetModules() {
        return targetModules;
    }

    /** Null means {@link #DEFAULT_SKIP} at the top level. */
    public List<String> skipModules() {
        return skipModules;
    }

    /** True if the layer at {@code path} should be quantized. */
    public boolean selects(String path) {
        if (skipModules == null) {
            if (DEFAULT_SKIP.contains(path)) {
                return false;
            }
        } else if (matchesAny(skipModules, path)) {
            return false;
        }
        return targetModules == null || matchesAny(targetModules, path);
    }

    private static boolean matchesAny(List<String> names, String path) {
        for (String n : names) {
            if (path.equals(n) || path.endsWith("." + n)) {
                return true;
            }
        }
        return false;
    }

    /** transformers' {@code BitsAndBytesConfig.to_dict()} keys, plus peft4j's block size. */
    public ObjectNode toJson() {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        o.put("quant_method", "bitsandbytes");
        o.put("load_in_4bit", type.isFourBit());
        o.put("load_in_8bit", type == QuantType.INT8);
        o.put("bnb_4bit_quant_type", type == QuantType.FP4 ? "fp4" : "nf4");
        o.put("bnb_4bit_use_double_quant", type.isFourBit() && doubleQuant);
        o.put("bnb_4bit_compute_dtype", "float32");
        o.put("bnb_4bit_quant_storage", "uint8");
        o.put("bnb_4bit_blocksize", blockSize);
        o.put("llm_int8_threshold", (double) int8Threshold);
        o.put("llm_int8_has_fp16_weight", false);
        o.put("llm_int8_enable_fp32_cpu_offload", false);
        ArrayNode skip = o.putArray("llm_int8_skip_modules");
        for (String s : skipModules == null ? DEFAULT_SKIP : skipModules) {
            skip.add(s);
        }
        if (targetModules != null) {
            ArrayNode t = o.putArray("peft4j_target_modules");
            targetModules.forEach(t::add);
        }
        return o;
    }

    /**
     * Reads a {@code quantization_config} object (as {@link #toJson()} or transformers write it).
     *
     * @throws IllegalArgumentException naming {@code where} for a method other than bitsandbytes or bad values
     */
    public static QuantConfig fromJson(JsonNode o, String where) {
        if (o == null || !o.isObject()) {
            throw new IllegalArgumentException(where + ": quantization_config must be an object");
        }
        String method = o.path("quant_method").asText("bitsandbytes");
        if (!method.equals("bitsandbytes")) {
            throw new IllegalArgumentException(where + ": quant_method '" + method + "' is not supported (bitsandbytes only)");
        }
        Builder b = builder();
        boolean four = o.path("load_in_4bit").asBoolean(false);
        boolean eight = o.path("load_in_8bit").asBoolean(false);
        if (four == eight) {
            throw new IllegalArgumentException(where + ": quantization_config must set exactly one of load_in_4bit and load_in_8bit");
        }
        if (four) {
            b.type(QuantType.parse(o.path("bnb_4bit_quant_type").asText("fp4")));
            b.doubleQuant(o.path("bnb_4bit_use_double_quant").asBoolean(false));
            b.blockSize(o.path("bnb_4bit_blocksize").asInt(DEFAULT_BLOCK_SIZE));
        } else {
            b.type(QuantType.INT8);
        }
        b.int8Threshold((float) o.path("llm_int8_threshold").asDouble(DEFAULT_INT8_THRESHOLD));
        JsonNode skip = o.get("llm_int8_skip_modules");
        if (skip != null && skip.isArray()) {
            List<String> s = new ArrayList<>();
            skip.forEach(n -> s.add(n.asText()));
            b.skipModules(s);
        }
        JsonNode target = o.get("peft4j_target_modules");
        if (target != null && target.isArray()) {
            List<String> t = new ArrayList<>();
            target.forEach(n -> t.add(n.asText()));
            b.targetModules(t);
        }
        try {
            return b.build();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
    }

    @Override
    public String toString() {
        return "QuantConfig(" + type.id() + (type.isFourBit() ? ", blocksize=" + blockSize + (doubleQuant ? ", double-quant" : "")
                : ", threshold=" + int8Threshold) + (targetModules != null ? ", targets=" + targetModules : "")
                + ", skip=" + (skipModules == null ? DEFAULT_SKIP : skipModules) + ")";
    }

    public static final class Builder {
        private QuantType type = QuantType.NF4;
        private int blockSize = DEFAULT_BLOCK_SIZE;
        private boolean doubleQuant = true;
        private float int8Threshold = DEFAULT_INT8_THRESHOLD;
        private List<String> targetModules;
        private List<String> skipModules;

        public Builder type(QuantType v) {
            type = v;
            return this;
        }

        public Builder blockSize(int v) {
            blockSize = v;
            return this;
        }

        public Builder doubleQuant(boolean v) {
            doubleQuant = v;
            return this;
        }

        public Builder int8Threshold(float v) {
            int8Threshold = v;
            return this;
        }

        public Builder targetModules(List<String> v) {
            targetModules = v;
            return this;
        }

        public Builder skipModules(List<String> v) {
            skipModules = v;
            return this;
        }

        /** @throws IllegalArgumentException for a missing type, a bad block size or a bad threshold */
        public QuantConfig build() {
            if (type == null) {
                throw new IllegalArgumentException("quantization type must be set (nf4, fp4 or int8)");
            }
            if (type.isFourBit()) {
                Quantized4bit.checkBlockSize(blockSize);
            }
            if (!(int8Threshold >= 0) || Float.isInfinite(int8Threshold)) {
                throw new IllegalArgumentException("int8 outlier threshold must be a finite number >= 0, got " + int8Threshold);
            }
            return new QuantConfig(this);
        }
    }
}
