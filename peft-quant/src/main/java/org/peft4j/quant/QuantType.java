package org.peft4j.quant;

import java.util.Locale;

/** The weight formats of peft-quant, named as bitsandbytes names them. */
public enum QuantType {
    /** 4-bit NormalFloat (QLoRA): 16 quantiles of N(0, 1) scaled to [-1, 1], one absmax per block. */
    NF4("nf4", 4),
    /** 4-bit float (1 sign, 2 exponent, 1 mantissa bit), one absmax per block. */
    FP4("fp4", 4),
    /** LLM.int8 weights: row-wise absmax int8, optional outlier columns kept in fp32. */
    INT8("int8", 8);

    private final String id;
    private final int bits;

    QuantType(String id, int bits) {
        this.id = id;
        this.bits = bits;
    }

    /** {@code "nf4"}, {@code "fp4"} or {@code "int8"} (bitsandbytes' {@code quant_type} names). */
    public String id() {
        return id;
    }

    public int bits() {
        return bits;
    }

    public boolean isFourBit() {
        return bits == 4;
    }

    /**
     * The type named {@code name} (case-insensitive: nf4, fp4, int8).
     *
     * @throws IllegalArgumentException naming the value and the accepted ones
     */
    public static QuantType parse(String name) {
        if (name != null) {
            String n = name.trim().toLowerCase(Locale.ROOT);
            for (QuantType t : values()) {
                if (t.id.equals(n)) {
                    return t;
                }
            }
        }
        throw new IllegalArgumentException("unknown quantization type '" + name + "' (expected nf4, fp4 or int8)");
    }
}
