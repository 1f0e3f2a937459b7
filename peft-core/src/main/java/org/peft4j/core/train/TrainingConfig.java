package org.peft4j.core.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.file.Path;
import java.util.Locale;

/**
 * Everything that controls a training run. Build it with {@link #builder()}; every field is
 * validated and a bad value is an {@link IllegalArgumentException} naming the field.
 *
 * @param epochs                    passes over the training data (used when {@code maxSteps <= 0})
 * @param maxSteps                  optimizer updates to run; {@code > 0} overrides {@code epochs}
 * @param batchSize                 examples per micro-batch (must equal the training loader's)
 * @param gradientAccumulationSteps micro-batches per optimizer update
 * @param maxGradNorm               global L2 clipping threshold; 0 disables clipping
 * @param learningRate              peak learning rate
 * @param weightDecay               decay for rank ≥ 2 parameters (rank ≤ 1 get none)
 * @param warmupSteps               linear warm-up updates; when 0, {@code warmupRatio} is used
 * @param warmupRatio               warm-up as a fraction of all updates ({@code ceil(ratio · total)})
 * @param schedule                  learning-rate curve after warm-up
 * @param optimizer                 ADAMW or SGD
 * @param adamBeta1                 AdamW β₁
 * @param adamBeta2                 AdamW β₂
 * @param adamEpsilon               AdamW ε
 * @param sgdMomentum               SGD momentum
 * @param evalInterval              evaluate every N updates; 0 = at the end of each epoch
 * @param logInterval               log the mean training loss every N updates
 * @param seed                      seed of the training loader's shuffling (and anything else seeded from the config)
 * @param outputDir                 where {@code metrics.jsonl} and checkpoints go; null = nowhere
 * @param checkpointInterval        checkpoint every N updates and at the end; 0 = only at the end; -1 = never
 * @param keepCheckpoints           how many of the newest {@code checkpoint-N} folders to keep; 0 = all
 * @param earlyStoppingPatience     evaluations without improvement before stopping; 0 = off
 * @param earlyStoppingMetric       the evaluation metric watched (e.g. {@code eval_loss}, {@code accuracy})
 * @param greaterIsBetter           whether a larger metric is an improvement
 * @param earlyStoppingThreshold    the minimum change that counts as an improvement
 */
public record TrainingConfig(
        int epochs,
        long maxSteps,
        int batchSize,
        int gradientAccumulationSteps,
        double maxGradNorm,
        double learningRate,
        double weightDecay,
        long warmupSteps,
        double warmupRatio,
        ScheduleType schedule,
        OptimizerType optimizer,
        double adamBeta1,
        double adamBeta2,
        double adamEpsilon,
        double sgdMomentum,
        int evalInterval,
        int logInterval,
        long seed,
        Path outputDir,
        int checkpointInterval,
        int keepCheckpoints,
        int earlyStoppingPatience,
        String earlyStoppingMetric,
        boolean greaterIsBetter,
        double earlyStoppingThreshold) {

    public TrainingConfig {
        require(epochs >= 1 || maxSteps > 0, "epochs", epochs, "must be >= 1 (or set maxSteps > 0)");
        require(epochs >= 0, "epochs", epochs, "must be >= 0");
        require(maxSteps >= -1, "maxSteps", maxSteps, "must be > 0, or -1/0 to use epochs");
        require(batchSize >= 1, "batchSize", batchSize, "must be >= 1");
        require(gradientAccumulationSteps >= 1, "gradientAccumulationSteps", gradientAccumulationSteps, "must be >= 1");
        require(finite(maxGradNorm) && maxGradNorm >= 0, "maxGradNorm", maxGradNorm, "must be finite and >= 0 (0 disables clipping)");
        require(finite(learningRate) && learningRate > 0, "learningRate", learningRate, "must be finite and > 0");
        require(finite(weightDecay) && weightDecay >= 0, "weightDecay", weightDecay, "must be finite and >= 0");
        require(warmupSteps >= 0, "warmupSteps", warmupSteps, "must be >= 0");
        require(finite(warmupRatio) && warmupRatio >= 0 && warmupRatio <= 1, "warmupRatio", warmupRatio, "must be in [0, 1]");
        require(schedule != null, "schedule", null, "must not be null");
        require(optimizer != null, "optimizer", null, "must not be null");
        require(adamBeta1 >= 0 && adamBeta1 < 1, "adamBeta1", adamBeta1, "must be in [0, 1)");
        require(adamBeta2 >= 0 && adamBeta2 < 1, "adamBeta2", adamBeta2, "must be in [0, 1)");
        require(finite(adamEpsilon) && adamEpsilon >= 0, "adamEpsilon", adamEpsilon, "must be finite and >= 0");
        require(finite(sgdMomentum) && sgdMomentum >= 0, "sgdMomentum", sgdMomentum, "must be finite and >= 0");
        require(evalInterval >= 0, "evalInterval", evalInterval, "must be >= 0 (0 = every epoch)");
        require(logInterval >= 1, "logInterval", logInterval, "must be >= 1");
        require(checkpointInterval >= -1, "checkpointInterval", checkpointInterval, "must be >= 0, or -1 to disable");
        require(keepCheckpoints >= 0, "keepCheckpoints", keepCheckpoints, "must be >= 0 (0 = keep all)");
        require(earlyStoppingPatience >= 0, "earlyStoppingPatience", earlyStoppingPatience, "must be >= 0 (0 = off)");
        require(earlyStoppingPatience == 0 || (earlyStoppingMetric != null && !earlyStoppingMetric.isBlank()),
                "earlyStoppingMetric", earlyStoppingMetric, "must name a metric when earlyStoppingPatience > 0");
        require(finite(earlyStoppingThreshold) && earlyStoppingThreshold >= 0, "earlyStoppingThreshold",
                earlyStoppingThreshold, "must be finite and >= 0");
    }

    private static boolean finite(double d) {
        return Double.isFinite(d);
    }

    private static void require(boolean ok, String field, Object value, String rule) {
        if (!ok) {
            throw new IllegalArgumentException("TrainingConfig." + field + " " + rule + " (got " + value + ")");
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A builder pre-filled with this config's values. */
    public Builder toBuilder() {
        return new Builder(this);
    }

    /** Optimizer updates per epoch for a loader with {@code numBatches} batches (a partial group still updates). */
    public long stepsPerEpoch(int numBatches) {
        return (numBatches + gradientAccumulationSteps - 1) / gradientAccumulationSteps;
    }

    /** Total optimizer updates of the run. */
    public long totalSteps(int numBatches) {
        return maxSteps > 0 ? maxSteps : epochs * stepsPerEpoch(numBatches);
    }

    /** Warm-up updates for a run of {@code totalSteps} (explicit steps win over the ratio). */
    public long warmupSteps(long totalSteps) {
        return LrSchedule.warmupSteps(warmupSteps, warmupRatio, totalSteps);
    }

    /** The configured schedule for a run of {@code totalSteps}. */
    public LrSchedule lrSchedule(long totalSteps) {
        return LrSchedule.of(schedule, learningRate, warmupSteps(totalSteps), totalSteps);
    }

    /** The configured JSON form (snake_case keys, as stored in checkpoints). */
    public ObjectNode toJson() {
        ObjectNode n = JsonNodeFactory.instance.objectNode();
        n.put("epochs", epochs);
        n.put("max_steps", maxSteps);
        n.put("batch_size", batchSize);
        n.put("gradient_accumulation_steps", gradientAccumulationSteps);
        n.put("max_grad_norm", maxGradNorm);
        n.put("learning_rate", learningRate);
        n.put("weight_decay", weightDecay);
        n.put("warmup_steps", warmupSteps);
        n.put("warmup_ratio", warmupRatio);
        n.put("schedule", schedule.name().toLowerCase(Locale.ROOT));
        n.put("optimizer", optimizer.name().toLowerCase(Locale.ROOT));
        n.put("adam_beta1", adamBeta1);
        n.put("adam_beta2", adamBeta2);
        n.put("adam_epsilon", adamEpsilon);
        n.put("sgd_momentum", sgdMomentum);
        n.put("eval_interval", evalInterval);
        n.put("log_interval", logInterval);
        n.put("seed", seed);
        if (outputDir == null) {
            n.putNull("output_dir");
        } else {
            n.put("output_dir", outputDir.toString());
        }
        n.put("checkpoint_interval", checkpointInterval);
        n.put("keep_checkpoints", keepCheckpoints);
        n.put("early_stopping_patience", earlyStoppingPatience);
        if (earlyStoppingMetric == null) {
            n.putNull("early_stopping_metric");
        } else {
            n.put("early_stopping_metric", earlyStoppingMetric);
        }
        n.put("greater_is_better", greaterIsBetter);
        n.put("early_stopping_threshold", earlyStoppingThreshold);
        return n;
    }

    /** Reads {@link #toJson()} output; absent keys keep the builder defaults, unknown keys are an error. */
    public static TrainingConfig fromJson(JsonNode n) {
        return fromJson(n, "");
    }

    /**
     * As {@link #fromJson(JsonNode)}, strictly typed: a value of the wrong type (a word where a
     * number belongs, a list where a string belongs, a fraction where an integer belongs) or an
     * unknown key is an error naming the key as {@code path + key} (e.g. {@code path}
     * {@code "training."} gives {@code training.learning_rate}), never a silent default.
     */
    public static TrainingConfig fromJson(JsonNode n, String path) {
        if (n == null || !n.isObject()) {
            throw new IllegalArgumentException((path.isEmpty() ? "training config JSON" : strip(path))
                    + " must be an object (a mapping of training keys)");
        }
        Builder b = builder();
        var it = n.fields();
        while (it.hasNext()) {
            var e = it.next();
            JsonNode v = e.getValue();
            switch (e.getKey()) {
                case "epochs" -> b.epochs(intOf(path + e.getKey(), v));
                case "max_steps" -> b.maxSteps(longOf(path + e.getKey(), v));
                case "batch_size" -> b.batchSize(intOf(path + e.getKey(), v));
                case "gradient_accumulation_steps" -> b.gradientAccumulationSteps(intOf(path + e.getKey(), v));
                case "max_grad_norm" -> b.maxGradNorm(doubleOf(path + e.getKey(), v));
                case "learning_rate" -> b.learningRate(doubleOf(path + e.getKey(), v));
                case "weight_decay" -> b.weightDecay(doubleOf(path + e.getKey(), v));
                case "warmup_steps" -> b.warmupSteps(longOf(path + e.getKey(), v));
                case "warmup_ratio" -> b.warmupRatio(doubleOf(path + e.getKey(), v));
                case "schedule" -> b.schedule(parseEnum(ScheduleType.class, path + "schedule", textOf(path + e.getKey(), v)));
                case "optimizer" -> b.optimizer(parseEnum(OptimizerType.class, path + "optimizer", textOf(path + e.getKey(), v)));
                case "adam_beta1" -> b.adamBetas(doubleOf(path + e.getKey(), v), b.adamBeta2);
                case "adam_beta2" -> b.adamBetas(b.adamBeta1, doubleOf(path + e.getKey(), v));
                case "adam_epsilon" -> b.adamEpsilon(doubleOf(path + e.getKey(), v));
                case "sgd_momentum" -> b.sgdMomentum(doubleOf(path + e.getKey(), v));
                case "eval_interval" -> b.evalInterval(intOf(path + e.getKey(), v));
                case "log_interval" -> b.logInterval(intOf(path + e.getKey(), v));
                case "seed" -> b.seed(longOf(path + e.getKey(), v));
                case "output_dir" -> b.outputDir(v.isNull() ? null : Path.of(textOf(path + e.getKey(), v)));
                case "checkpoint_interval" -> b.checkpointInterval(intOf(path + e.getKey(), v));
                case "keep_checkpoints" -> b.keepCheckpoints(intOf(path + e.getKey(), v));
                case "early_stopping_patience" -> b.earlyStoppingPatience(intOf(path + e.getKey(), v));
                case "early_stopping_metric" -> b.earlyStoppingMetric(v.isNull() ? null : textOf(path + e.getKey(), v));
                case "greater_is_better" -> b.greaterIsBetter(boolOf(path + e.getKey(), v));
                case "early_stopping_threshold" -> b.earlyStoppingThreshold(doubleOf(path + e.getKey(), v));
                default -> throw new IllegalArgumentException("unknown training config key " + quote(path + e.getKey())
                        + " (known: " + String.join(", ", KEYS) + ")");
            }
        }
        try {
            return b.build();
        } catch (IllegalArgumentException ex) {
            // a value out of range: named by its key in the file (training.learning_rate), not its Java field
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("^TrainingConfig\\.(\\w+)").matcher(ex.getMessage());
            if (path.isEmpty() || !m.find()) {
                throw ex;
            }
            String key = m.group(1).replaceAll("([A-Z])", "_$1").toLowerCase(Locale.ROOT);
            throw new IllegalArgumentException(path + key + ex.getMessage().substring(m.end()), ex);
        }
    }

    /**
     * A number as YAML 1.2 reads it: a JSON number, or a plain scalar such as {@code 1e-3} that
     * YAML 1.1 parsers leave as a string. Anything else (a word, a list, a boolean) is an error
     * naming the key: never a silent default.
     */
    private static double doubleOf(String key, JsonNode v) {
        if (v.isNumber()) {
            return v.doubleValue();
        }
        if (v.isTextual() && NUMBER.matcher(v.textValue().strip()).matches()) {
            return Double.parseDouble(v.textValue().strip());
        }
        throw new IllegalArgumentException(quote(key) + " must be a number, got " + describe(v));
    }

    private static long longOf(String key, JsonNode v) {
        if (v.isIntegralNumber() && v.canConvertToLong()) {
            return v.longValue();
        }
        if (v.isNumber() && v.doubleValue() == Math.rint(v.doubleValue()) && Math.abs(v.doubleValue()) < 0x1p53) {
            return (long) v.doubleValue();
        }
        if (v.isTextual() && v.textValue().strip().matches("[-+]?[0-9]{1,18}")) {
            return Long.parseLong(v.textValue().strip());
        }
        throw new IllegalArgumentException(quote(key) + " must be an integer, got " + describe(v));
    }

    private static int intOf(String key, JsonNode v) {
        long l = longOf(key, v);
        if (l < Integer.MIN_VALUE || l > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(quote(key) + " must fit a 32-bit integer, got " + l);
        }
        return (int) l;
    }

    private static boolean boolOf(String key, JsonNode v) {
        if (v.isBoolean()) {
            return v.booleanValue();
        }
        throw new IllegalArgumentException(quote(key) + " must be true or false, got " + describe(v));
    }

    private static String textOf(String key, JsonNode v) {
        if (v.isTextual()) {
            return v.textValue();
        }
        throw new IllegalArgumentException(quote(key) + " must be a string, got " + describe(v));
    }

    /** Every key {@link #fromJson} reads, sorted. */
    static final java.util.List<String> KEYS = java.util.List.of("adam_beta1", "adam_beta2", "adam_epsilon",
            "batch_size", "checkpoint_interval", "early_stopping_metric", "early_stopping_patience",
            "early_stopping_threshold", "epochs", "eval_interval", "gradient_accumulation_steps", "greater_is_better",
            "keep_checkpoints", "learning_rate", "log_interval", "max_grad_norm", "max_steps", "optimizer",
            "output_dir", "schedule", "seed", "sgd_momentum", "warmup_ratio", "warmup_steps", "weight_decay");

    /** A bare key in quotes ({@code 'epochs'}); a dotted path as it is ({@code training.epochs}). */
    private static String quote(String key) {
        return key.contains(".") ? key : "'" + key + "'";
    }

    private static String strip(String path) {
        return path.endsWith(".") ? path.substring(0, path.length() - 1) : path;
    }

    private static String describe(JsonNode v) {
        String t = v.toString();
        return (t.length() > 60 ? t.substring(0, 60) + "..." : t) + " (" + v.getNodeType().name().toLowerCase(Locale.ROOT) + ")";
    }

    private static final java.util.regex.Pattern NUMBER =
            java.util.regex.Pattern.compile("[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?");

    private static <E extends Enum<E>> E parseEnum(Class<E> type, String field, String text) {
        try {
            return Enum.valueOf(type, text.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException ex) {
            throw new IllegalArgumentException((field.contains(".") ? field : "TrainingConfig." + field) + " has unknown value '"
                    + text + "' (one of " + java.util.Arrays.toString(type.getEnumConstants()).toLowerCase(Locale.ROOT) + ")", ex);
        }
    }

    /**
     * Builder with Hugging Face-like defaults: 3 epochs, batch 8, no accumulation, clip at 1.0,
     * lr 5e-5, no decay, no warm-up, linear schedule, AdamW (0.9, 0.999, 1e-8), evaluation each
     * epoch, log every 10 updates, seed 42, no output dir, checkpoint at the end, keep 2,
     * no early stopping (metric {@code eval_loss}, lower is better).
     */
    public static final class Builder {
        private int epochs = 3;
        private long maxSteps = -1;
        private int batchSize = 8;
        private int gradientAccumulationSteps = 1;
        private double maxGradNorm = 1.0;
        private double learningRate = 5e-5;
        private double weightDecay = 0.0;
        private long warmupSteps = 0;
        private double warmupRatio = 0.0;
        private ScheduleType schedule = ScheduleType.LINEAR;
        private OptimizerType optimizer = OptimizerType.ADAMW;
        private double adamBeta1 = 0.9;
        private double adamBeta2 = 0.999;
        private double adamEpsilon = 1e-8;
        private double sgdMomentum = 0.9;
        private int evalInterval = 0;
        private int logInterval = 10;
        private long seed = 42;
        private Path outputDir = null;
        private int checkpointInterval = 0;
        private int keepCheckpoints = 2;
        private int earlyStoppingPatience = 0;
        private String earlyStoppingMetric = "eval_loss";
        private boolean greaterIsBetter = false;
        private double earlyStoppingThreshold = 0.0;

        private Builder() {
        }

        private Builder(TrainingConfig c) {
            epochs = c.epochs;
            maxSteps = c.maxSteps;
            batchSize = c.batchSize;
            gradientAccumulationSteps = c.gradientAccumulationSteps;
            maxGradNorm = c.maxGradNorm;
            learningRate = c.learningRate;
            weightDecay = c.weightDecay;
            warmupSteps = c.warmupSteps;
            warmupRatio = c.warmupRatio;
            schedule = c.schedule;
            optimizer = c.optimizer;
            adamBeta1 = c.adamBeta1;
            adamBeta2 = c.adamBeta2;
            adamEpsilon = c.adamEpsilon;
            sgdMomentum = c.sgdMomentum;
            evalInterval = c.evalInterval;
            logInterval = c.logInterval;
            seed = c.seed;
            outputDir = c.outputDir;
            checkpointInterval = c.checkpointInterval;
            keepCheckpoints = c.keepCheckpoints;
            earlyStoppingPatience = c.earlyStoppingPatience;
            earlyStoppingMetric = c.earlyStoppingMetric;
            greaterIsBetter = c.greaterIsBetter;
            earlyStoppingThreshold = c.earlyStoppingThreshold;
        }

        public Builder epochs(int v) { epochs = v; return this; }
        public Builder maxSteps(long v) { maxSteps = v; return this; }
        public Builder batchSize(int v) { batchSize = v; return this; }
        public Builder gradientAccumulationSteps(int v) { gradientAccumulationSteps = v; return this; }
        public Builder maxGradNorm(double v) { maxGradNorm = v; return this; }
        public Builder learningRate(double v) { learningRate = v; return this; }
        public Builder weightDecay(double v) { weightDecay = v; return this; }
        public Builder warmupSteps(long v) { warmupSteps = v; return this; }
        public Builder warmupRatio(double v) { warmupRatio = v; return this; }
        public Builder schedule(ScheduleType v) { schedule = v; return this; }
        public Builder optimizer(OptimizerType v) { optimizer = v; return this; }
        public Builder adamBetas(double b1, double b2) { adamBeta1 = b1; adamBeta2 = b2; return this; }
        public Builder adamEpsilon(double v) { adamEpsilon = v; return this; }
        public Builder sgdMomentum(double v) { sgdMomentum = v; return this; }
        public Builder evalInterval(int v) { evalInterval = v; return this; }
        public Builder logInterval(int v) { logInterval = v; return this; }
        public Builder seed(long v) { seed = v; return this; }
        public Builder outputDir(Path v) { outputDir = v; return this; }
        public Builder checkpointInterval(int v) { checkpointInterval = v; return this; }
        public Builder keepCheckpoints(int v) { keepCheckpoints = v; return this; }
        public Builder earlyStoppingPatience(int v) { earlyStoppingPatience = v; return this; }
        public Builder earlyStoppingMetric(String v) { earlyStoppingMetric = v; return this; }
        public Builder greaterIsBetter(boolean v) { greaterIsBetter = v; return this; }
        public Builder earlyStoppingThreshold(double v) { earlyStoppingThreshold = v; return this; }

        /** Early stopping after {@code patience} evaluations without improvement of {@code metric}. */
        public Builder earlyStopping(String metric, int patience, boolean greaterIsBetter) {
            this.earlyStoppingMetric = metric;
            this.earlyStoppingPatience = patience;
            this.greaterIsBetter = greaterIsBetter;
            return this;
        }

        public TrainingConfig build() {
            return new TrainingConfig(epochs, maxSteps, batchSize, gradientAccumulationSteps, maxGradNorm,
                    learningRate, weightDecay, warmupSteps, warmupRatio, schedule, optimizer, adamBeta1, adamBeta2,
                    adamEpsilon, sgdMomentum, evalInterval, logInterval, seed, outputDir, checkpointInterval,
                    keepCheckpoints, earlyStoppingPatience, earlyStoppingMetric, greaterIsBetter, earlyStoppingThreshold);
        }
    }
}
