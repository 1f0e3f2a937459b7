package org.peft4j.examples.cli;

import org.peft4j.adapter.BottleneckConfig;
import org.peft4j.adapter.Ia3Config;
import org.peft4j.core.model.bert.BertConfig;
import org.peft4j.core.model.bert.BertForSequenceClassification;
import org.peft4j.core.model.bert.BertModel;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.peft.Peft;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.peft.TaskType;
import org.peft4j.core.tensor.Rng;
import org.peft4j.lora.LoraConfig;
import org.peft4j.quant.QuantConfig;
import org.peft4j.quant.Quantizer;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The three ways {@code peft4j demo} and {@code peft4j compare} fine-tune an encoder for
 * classification, set up on the same encoder with the same seeded head.
 */
final class FineTuning {
    private FineTuning() {
    }

    enum Method {
        /** Frozen encoder; only the new classifier head trains. */
        HEAD("head-only"),
        /** LoRA on the attention query/value projections plus the trainable classifier head. */
        LORA("lora"),
        /** Every parameter trains. */
        FULL("full"),
        /**
         * QLoRA: every encoder linear layer quantized to NF4 (block 64, double quantization; the
         * classifier stays fp32), then the same LoRA as {@link #LORA}.
         */
        QLORA("qlora"),
        /**
         * IA3 with PEFT's BERT defaults (vectors on key, value and the two output.dense layers, the
         * latter scaling their inputs) plus the trainable classifier head.
         */
        IA3("ia3"),
        /** AdapterHub's seq_bn (Pfeiffer) bottleneck adapter, reduction factor 16, plus the trainable head. */
        SEQ_BN("seq_bn"),
        /** AdapterHub's double_seq_bn (Houlsby): adapters after attention and after the feed-forward block. */
        DOUBLE_SEQ_BN("double_seq_bn"),
        /** AdapterHub's par_bn: a parallel adapter beside the feed-forward block, factor 2, scaling 4. */
        PAR_BN("par_bn"),
        /**
         * AdapterFusion (static) over a seq_bn adapter trained on IMDB and one trained on the spam
         * e-mails, plus a new classifier ({@link FusionExperiment} trains the two adapters first).
         */
        FUSION("fusion"),
        /** Prompt tuning: 20 virtual tokens (N(0, 1) init) in front of the input, plus the trainable classifier head. */
        PROMPT_TUNING("prompt_tuning"),
        /** P-tuning: 20 virtual tokens from PEFT's MLP prompt encoder (hidden 128), plus the classifier head. */
        P_TUNING("p_tuning"),
        /** Prefix tuning: a 20-token key/value prefix in every layer, plus the classifier head. */
        PREFIX_TUNING("prefix_tuning");

        final String label;

        Method(String label) {
            this.label = label;
        }

        static Method parse(String s) {
            for (Method m : values()) {
                if (m.label.equals(s) || m.name().equalsIgnoreCase(s)) {
                    return m;
                }
            }
            throw new CliException("unknown method '" + s + "' (head-only, lora, full, qlora, ia3, seq_bn, double_seq_bn, par_bn, fusion, prompt_tuning, p_tuning, prefix_tuning)");
        }
    }

    /** LoRA settings of the demo (PEFT's keys in {@link #loraConfig}). */
    record LoraSettings(int r, int alpha, double dropout, List<String> targets) {
        static final LoraSettings DEMO = new LoraSettings(8, 16, 0.1, List.of("query", "value"));

        String describe() {
            return String.format(Locale.ROOT, "LoRA r=%d alpha=%d dropout=%.2f on %s", r, alpha, dropout, String.join("/", targets));
        }
    }

    /** A model ready to train: what to give the trainer and what to run. */
    record Setup(Method method, BertForSequenceClassification model, Module root, PeftModel peft,
                 Map<String, Parameter> trainable) {
        long trainableCount() {
            long n = 0;
            for (Parameter p : trainable.values()) {
                n += p.length();
            }
            return n;
        }

        long totalCount() {
            return root.numParameters();
        }

        /** PEFT's line: {@code trainable params: N || all params: M || trainable%: p}. */
        String trainableLine() {
            if (peft != null) {
                return peft.printTrainableParameters();
            }
            long all = totalCount();
            return String.format(Locale.ROOT, "trainable params: %,d || all params: %,d || trainable%%: %.4f",
                    trainableCount(), all, 100.0 * trainableCount() / all);
        }
    }

    static LoraConfig loraConfig(LoraSettings s, String baseModel, long seed) {
        return LoraConfig.builder()
                .r(s.r()).loraAlpha(s.alpha()).loraDropout(s.dropout())
                .targetModules(s.targets().toArray(new String[0]))
                .modulesToSave("classifier")
                .taskType(TaskType.SEQ_CLS)
                .baseModelNameOrPath(baseModel)
                .seed(seed)
                .build();
    }

    /** IA3 with PEFT's default targets for BERT, the classifier trained in full next to it. */
    static Ia3Config ia3Config(String baseModel, long seed) {
        Ia3Config c = new Ia3Config().modulesToSave("classifier").taskType(TaskType.SEQ_CLS).seed(seed);
        c.setBaseModelNameOrPath(baseModel);
        return c;
    }

    /** An AdapterHub preset with the new classifier trained in full beside it. */
    static BottleneckConfig bottleneckConfig(String preset, String baseModel, long seed) {
        BottleneckConfig c = BottleneckConfig.preset(preset);
        c.setModulesToSave(List.of("classifier"));
        c.setTaskType(TaskType.SEQ_CLS);
        c.setBaseModelNameOrPath(baseModel);
        c.setSeed(seed);
        return c;
    }

    /** Virtual tokens of the prompt methods in {@code compare}. */
    static final int PROMPT_TOKENS = 20;

    /**
     * The prompt methods' length and, for prompt tuning, an optional {@code TEXT} init
     * ({@code initText} tokenized by the model's tokenizer; null: PEFT's default {@code RANDOM}).
     */
    record PromptSettings(int virtualTokens, String initText) {
        static final PromptSettings DEFAULT = new PromptSettings(PROMPT_TOKENS, null);

        String describe() {
            return virtualTokens + " virtual tokens" + (initText == null ? "" : ", TEXT init \"" + initText + "\"");
        }
    }

    /** The prompt methods' configs (PEFT's keys), the classifier head trained beside them as PEFT does for SEQ_CLS. */
    static org.peft4j.core.peft.PeftConfig promptConfig(Method method, String baseModel, long seed) {
        return promptConfig(method, baseModel, seed, PromptSettings.DEFAULT, null);
    }

    static org.peft4j.core.peft.PeftConfig promptConfig(Method method, String baseModel, long seed, PromptSettings ps,
                                                        org.peft4j.core.tokenizer.Tokenizer tokenizer) {
        org.peft4j.prompt.PromptLearningConfig c = switch (method) {
            case PROMPT_TUNING -> {
                org.peft4j.prompt.PromptTuningConfig pt = new org.peft4j.prompt.PromptTuningConfig();
                if (ps.initText() != null) {
                    pt.setInit(org.peft4j.prompt.PromptTuningConfig.Init.TEXT);
                    pt.setInitText(ps.initText(), tokenizer.encode(ps.initText()).ids());
                }
                yield pt;
            }
            case P_TUNING -> new org.peft4j.prompt.PromptEncoderConfig().setEncoderHiddenSize(128);
            case PREFIX_TUNING -> new org.peft4j.prompt.PrefixTuningConfig();
            default -> throw new IllegalArgumentException(method + " is not a prompt method");
        };
        c.setNumVirtualTokens(ps.virtualTokens());
        c.setModulesToSave(List.of("classifier"));
        c.setTaskType(TaskType.SEQ_CLS);
        c.setBaseModelNameOrPath(baseModel);
        c.setSeed(seed);
        return c;
    }

    /**
     * Puts a new classifier (mean pooling unless the encoder has a pooler; N(0, 0.02) weights from
     * {@code seed}) on {@code encoder} and makes the parameters of {@code method} trainable.
     */
    static Setup setUp(Method method, BertModel encoder, List<String> labels, String baseModel, LoraSettings lora, long seed) {
        return setUp(method, encoder, labels, baseModel, lora, PromptSettings.DEFAULT, null, seed);
    }

    /** As above, with the prompt methods' settings ({@code tokenizer} is needed only for a {@code TEXT} init). */
    static Setup setUp(Method method, BertModel encoder, List<String> labels, String baseModel, LoraSettings lora,
                       PromptSettings prompt, org.peft4j.core.tokenizer.Tokenizer tokenizer, long seed) {
        BertForSequenceClassification model = BertForSequenceClassification.withNewHead(
                encoder, labels, Models.defaultPooling(encoder), new Rng(seed));
        switch (method) {
            case HEAD -> {
                model.freeze();
                model.child("classifier").unfreeze();
                return new Setup(method, model, model, null, model.namedTrainableParameters());
            }
            case FULL -> {
                model.unfreeze();
                return new Setup(method, model, model, null, model.namedTrainableParameters());
            }
            case SEQ_BN, DOUBLE_SEQ_BN, PAR_BN -> {
                // the adapter (AdapterHub's preset, named as the preset: its seeds depend on the name) and the new head train
                PeftModel pm = Peft.apply(model, bottleneckConfig(method.label, baseModel, seed), method.label);
                return new Setup(method, model, pm, pm, pm.trainableParameters());
            }
            case FUSION -> throw new IllegalArgumentException("fusion needs its two adapters trained first: FusionExperiment.setUp");
            case IA3 -> {
                PeftModel pm = Peft.apply(model, ia3Config(baseModel, seed));
                return new Setup(method, model, pm, pm, pm.trainableParameters());
            }
            case PROMPT_TUNING, P_TUNING, PREFIX_TUNING -> {
                PeftModel pm = Peft.apply(model, promptConfig(method, baseModel, seed, prompt, tokenizer));
                return new Setup(method, model, pm, pm, pm.trainableParameters());
            }
            case QLORA -> {
                Quantizer.quantize(model, QuantConfig.nf4());
                PeftModel pm = Peft.apply(model, loraConfig(lora, baseModel, seed));
                return new Setup(method, model, pm, pm, pm.trainableParameters());
            }
            default -> {
                PeftModel pm = Peft.apply(model, loraConfig(lora, baseModel, seed));
                return new Setup(method, model, pm, pm, pm.trainableParameters());
            }
        }
    }

    /** The pooling a head on this encoder uses, for messages. */
    static String poolingName(BertModel encoder) {
        return Models.defaultPooling(encoder) == BertConfig.Pooling.POOLER ? "pooler" : "mean pooling";
    }
}
