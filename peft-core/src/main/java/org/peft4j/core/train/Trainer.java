package org.peft4j.core.train;

import com.fasterxml.jackson.databind.JsonNode;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.tensor.NoGrad;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.tensor.Tensor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The one training loop every PEFT method uses.
 *
 * <p>It sees only the trainable parameters it is given (frozen ones are rejected). Each
 * optimizer update runs {@code gradientAccumulationSteps} micro-batches (fewer for the last
 * group of an epoch): forward and loss through the {@link LossFunction}, backward with the
 * loss scaled by {@code 1 / micro-batches in the group}, then clipping by global norm, the
 * scheduled learning rate, the optimizer step and zeroed gradients. The model is in
 * {@code train()} mode during updates and in {@code eval()} mode with gradient recording off
 * during evaluation.
 *
 * <p>Built-in listeners (added automatically): a progress line ({@link ProgressListener}), a
 * JSONL metrics log {@code <outputDir>/metrics.jsonl} ({@link MetricsLogger}) when an output
 * folder is set, and {@link EarlyStopping} when the config asks for it. Checkpoints
 * ({@link TrainerCheckpoint}) are written every {@code checkpointInterval} updates and at the
 * end; {@link #resume(Path)} restores one so that the continued run reproduces the
 * uninterrupted one exactly (same data order, dropout masks, optimizer state and schedule).
 *
 * <p>A non-finite loss or gradient norm raises {@link TrainingDivergedException} before any
 * parameter is touched, and no checkpoint is written after it.
 */
public final class Trainer implements TrainerContext {
    private static final Logger LOG = LoggerFactory.getLogger(Trainer.class);

    private final Module model;
    private final Map<String, Parameter> params;
    /** Trainable parameters of the model that the trainer was not given: their gradients are dropped each update. */
    private final List<Parameter> unmanaged;
    private final LossFunction lossFn;
    private final EvalFunction evalFn;
    private final TrainingConfig config;
    private final Optimizer optimizer;
    private final List<Rng> rngs;
    private final List<TrainingListener> listeners;

    private long globalStep;
    private int epoch;
    private int batchInEpoch;
    private long totalSteps;
    private int numBatches;
    private boolean resumed;
    private TrainerState.LoaderState resumedLoader;

    private double windowLossSum;
    private long windowSteps;
    private long windowTokens;
    private long windowStartNanos;

    private long lastEvalStep = -1;
    private Map<String, Double> lastEvalMetrics = Map.of();
    private long lastCheckpointStep = -1;
    private Path lastCheckpoint;
    private String stopReason;
    private DataLoader<?> currentTrain;

    /** A trainer with the optimizer, listeners and no extra RNGs derived from the config. */
    public Trainer(Module model, Map<String, Parameter> trainable, LossFunction loss, EvalFunction eval,
                   TrainingConfig config) {
        this(builder(model, trainable, loss, config).evalFunction(eval));
    }

    private Trainer(Builder b) {
        if (b.model == null) {
            throw new IllegalArgumentException("trainer needs a model");
        }
        if (b.loss == null) {
            throw new IllegalArgumentException("trainer needs a loss function");
        }
        if (b.config == null) {
            throw new IllegalArgumentException("trainer needs a TrainingConfig");
        }
        if (b.trainable == null || b.trainable.isEmpty()) {
            throw new IllegalArgumentException("trainer needs at least one trainable parameter");
        }
        Map<String, Parameter> copy = new LinkedHashMap<>();
        Set<Parameter> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        for (Map.Entry<String, Parameter> e : b.trainable.entrySet()) {
            Parameter p = e.getValue();
            if (p == null) {
                throw new IllegalArgumentException("trainable parameter '" + e.getKey() + "' is null");
            }
            if (!p.isTrainable()) {
                throw new IllegalArgumentException("parameter '" + e.getKey() + "' is frozen (trainable = false); "
                        + "the trainer accepts only trainable parameters (use model.namedTrainableParameters())");
            }
            if (!seen.add(p)) {
                throw new IllegalArgumentException("parameter '" + e.getKey() + "' is listed twice under different names");
            }
            copy.put(e.getKey(), p);
        }
        this.model = b.model;
        this.params = Collections.unmodifiableMap(copy);
        this.lossFn = b.loss;
        this.evalFn = b.eval;
        this.config = b.config;
        this.rngs = List.copyOf(b.rngs);

        Set<Parameter> inModel = Collections.newSetFromMap(new IdentityHashMap<>());
        List<Parameter> others = new ArrayList<>();
        List<String> otherNames = new ArrayList<>();
        for (Map.Entry<String, Parameter> e : model.namedParameters().entrySet()) {
            inModel.add(e.getValue());
            if (e.getValue().isTrainable() && !seen.contains(e.getValue())) {
                others.add(e.getValue());
                otherNames.add(e.getKey());
            }
        }
        this.unmanaged = others;
        if (!others.isEmpty()) {
            LOG.warn("{} trainable model parameter(s) were not given to the trainer and will not be updated: {}",
                    others.size(), otherNames.size() > 10 ? otherNames.subList(0, 10) + " …" : otherNames);
        }
        List<String> outside = new ArrayList<>();
        copy.forEach((k, p) -> {
            if (!inModel.contains(p)) {
                outside.add(k);
            }
        });
        if (!outside.isEmpty()) {
            LOG.info("trainable parameters outside the model tree (updated all the same): {}", outside);
        }

        if (b.optimizer != null) {
            Map<String, Parameter> op = b.optimizer.parameters();
            if (op.size() != copy.size() || !op.keySet().equals(copy.keySet())
                    || op.entrySet().stream().anyMatch(e -> copy.get(e.getKey()) != e.getValue())) {
                throw new IllegalArgumentException("the supplied optimizer must manage exactly the trainer's parameters; optimizer has "
                        + new TreeSet<>(op.keySet()) + ", trainer has " + new TreeSet<>(copy.keySet()));
            }
            this.optimizer = b.optimizer;
        } else {
            this.optimizer = createOptimizer(config, copy);
        }

        List<TrainingListener> ls = new ArrayList<>();
        if (b.progress) {
            ls.add(new ProgressListener(b.progressStream));
        }
        if (config.outputDir() != null) {
            ls.add(new MetricsLogger(config.outputDir().resolve("metrics.jsonl")));
        }
        if (config.earlyStoppingPatience() > 0) {
            ls.add(new EarlyStopping(config.earlyStoppingMetric(), config.earlyStoppingPatience(),
                    config.greaterIsBetter(), config.earlyStoppingThreshold()));
        }
        ls.addAll(b.listeners);
        Set<String> keys = new TreeSet<>();
        for (TrainingListener l : ls) {
            if (l.stateKey() != null && !keys.add(l.stateKey())) {
                throw new IllegalArgumentException("two listeners share the checkpoint state key '" + l.stateKey() + "'");
            }
        }
        this.listeners = Collections.unmodifiableList(ls);
    }

    /** The optimizer a config describes, over {@code params}. */
    public static Optimizer createOptimizer(TrainingConfig config, Map<String, Parameter> params) {
        return switch (config.optimizer()) {
            case ADAMW -> AdamW.builder(params).lr(config.learningRate())
                    .betas(config.adamBeta1(), config.adamBeta2()).eps(config.adamEpsilon())
                    .weightDecay(config.weightDecay()).build();
            case SGD -> Sgd.builder(params).lr(config.learningRate()).momentum(config.sgdMomentum())
                    .weightDecay(config.weightDecay()).build();
        };
    }

    public static Builder builder(Module model, Map<String, Parameter> trainable, LossFunction loss, TrainingConfig config) {
        return new Builder(model, trainable, loss, config);
    }

    // ---- TrainerContext ------------------------------------------------------------------

    @Override
    public Module model() {
        return model;
    }

    @Override
    public Optimizer optimizer() {
        return optimizer;
    }

    @Override
    public TrainingConfig config() {
        return config;
    }

    @Override
    public long globalStep() {
        return globalStep;
    }

    @Override
    public long totalSteps() {
        return totalSteps;
    }

    @Override
    public int epoch() {
        return epoch;
    }

    @Override
    public int batchInEpoch() {
        return batchInEpoch;
    }

    @Override
    public boolean resumed() {
        return resumed;
    }

    @Override
    public void requestStop(String reason) {
        if (stopReason == null) {
            stopReason = reason == null ? "stop requested" : reason;
            LOG.info("stopping after step {}: {}", globalStep, stopReason);
        }
    }

    /** The parameters being trained, by name. */
    public Map<String, Parameter> parameters() {
        return params;
    }

    public List<TrainingListener> listeners() {
        return listeners;
    }

    /** The RNGs whose state checkpoints save and restore (e.g. the model's dropout generator). */
    public List<Rng> rngs() {
        return rngs;
    }

    // ---- training ------------------------------------------------------------------------

    /** Trains without evaluation. */
    public TrainResult fit(DataLoader<?> train) {
        return fit(train, null);
    }

    /**
     * Trains until the configured number of updates is done (or a listener stops the run),
     * continuing from the current position (0, or where {@link #resume(Path)} left it).
     *
     * @param train the training loader; its batch size must equal {@code config.batchSize()}
     * @param eval  the evaluation loader, or null for no evaluation
     */
    public TrainResult fit(DataLoader<?> train, DataLoader<?> eval) {
        if (train == null) {
            throw new IllegalArgumentException("fit needs a training data loader");
        }
        if (train.batchSize() != config.batchSize()) {
            throw new IllegalArgumentException("TrainingConfig.batchSize (" + config.batchSize()
                    + ") differs from the training loader's batch size (" + train.batchSize() + ")");
        }
        numBatches = train.numBatches();
        checkResumedLoader(train);
        totalSteps = config.totalSteps(numBatches);
        LrSchedule schedule = config.lrSchedule(totalSteps);
        int accumulation = config.gradientAccumulationSteps();
        boolean checkpointing = config.outputDir() != null && config.checkpointInterval() >= 0;
        currentTrain = train;
        stopReason = null;

        long nParams = 0;
        for (Parameter p : params.values()) {
            nParams += p.length();
        }
        LOG.info("training {} parameter tensors ({} values) for {} updates ({} batches/epoch, accumulation {}, "
                        + "{} warm-up), starting at step {}", params.size(), nParams, totalSteps, numBatches,
                accumulation, config.warmupSteps(totalSteps), globalStep);

        zeroAllGrads();
        model.train();
        for (TrainingListener l : listeners) {
            l.onTrainBegin(this);
        }
        long start = System.nanoTime();
        windowStartNanos = start;
        long stepsThisRun = 0;
        double lastLoss = Double.NaN;

        while (globalStep < totalSteps && stopReason == null) {
            int from = batchInEpoch;
            int to = Math.min(from + accumulation, numBatches);
            int group = to - from;
            double stepLoss = 0.0;
            long tokens = 0;
            long examples = 0;
            for (int i = from; i < to; i++) {
                Batch batch = train.batch(epoch, i);
                Tensor loss = lossFn.loss(model, batch);
                if (loss == null || loss.length() != 1) {
                    zeroAllGrads();
                    throw new IllegalStateException("the loss function must return a one-element tensor, got "
                            + (loss == null ? "null" : Arrays.toString(loss.shape())));
                }
                double lv = loss.item();
                if (!Double.isFinite(lv)) {
                    zeroAllGrads();
                    throw new TrainingDivergedException(globalStep + 1, "loss", lv,
                            "epoch " + epoch + ", batch " + i);
                }
                if (!loss.requiresGrad()) {
                    zeroAllGrads();
                    throw new IllegalStateException("the loss does not depend on any trainable parameter "
                            + "(or was computed with gradient recording off)");
                }
                // scaling the seed instead of the loss: d(loss/group) = (1/group)·d(loss)
                loss.backward(Nd4j.valueArrayOf(loss.shape(), 1.0 / group, loss.value().dataType()));
                stepLoss += lv / group;
                tokens += batch.numTokens();
                examples += batch.size();
            }
            double gradNorm = config.maxGradNorm() > 0
                    ? GradClipping.clipGradNorm(params.values(), config.maxGradNorm())
                    : GradClipping.globalNorm(params.values());
            if (!Double.isFinite(gradNorm)) {
                zeroAllGrads();
                throw new TrainingDivergedException(globalStep + 1, "grad_norm", gradNorm,
                        "epoch " + epoch + ", batches " + from + ".." + (to - 1));
            }
            double lr = schedule.lr(globalStep);
            optimizer.setLearningRate(lr);
            optimizer.step();
            zeroAllGrads();

            globalStep++;
            stepsThisRun++;
            batchInEpoch = to;
            boolean epochEnd = false;
            if (batchInEpoch >= numBatches) {
                epoch++;
                batchInEpoch = 0;
                epochEnd = true;
            }
            lastLoss = stepLoss;
            windowLossSum += stepLoss;
            windowSteps++;
            windowTokens += tokens;

            StepEvent ev = new StepEvent(globalStep, totalSteps, fractionalEpoch(), stepLoss, lr, gradNorm, tokens, examples);
            for (TrainingListener l : listeners) {
                l.onStepEnd(this, ev);
            }
            if (globalStep % config.logInterval() == 0 || globalStep == totalSteps) {
                long now = System.nanoTime();
                double windowSec = (now - windowStartNanos) / 1e9;
                double elapsed = (now - start) / 1e9;
                double eta = (totalSteps - globalStep) * (elapsed / stepsThisRun);
                LogEvent log = new LogEvent(globalStep, totalSteps, fractionalEpoch(), windowLossSum / windowSteps, lr,
                        gradNorm, windowSec > 0 ? windowTokens / windowSec : 0.0, elapsed, eta);
                windowLossSum = 0;
                windowSteps = 0;
                windowTokens = 0;
                windowStartNanos = now;
                for (TrainingListener l : listeners) {
                    l.onLog(this, log);
                }
            }
            boolean doEval = eval != null
                    && (config.evalInterval() > 0 ? globalStep % config.evalInterval() == 0 : epochEnd);
            if (doEval) {
                evaluateAndNotify(eval);
            }
            if (checkpointing && config.checkpointInterval() > 0 && globalStep % config.checkpointInterval() == 0) {
                saveCheckpoint();
            }
        }

        if (eval != null && globalStep > 0 && lastEvalStep != globalStep) {
            evaluateAndNotify(eval);
        }
        if (checkpointing && globalStep > 0 && lastCheckpointStep != globalStep) {
            saveCheckpoint();
        }
        TrainResult result = new TrainResult(globalStep, totalSteps, fractionalEpoch(), lastLoss, lastEvalMetrics,
                stopReason != null, stopReason, lastCheckpoint);
        for (TrainingListener l : listeners) {
            l.onTrainEnd(this, result);
        }
        return result;
    }

    private double fractionalEpoch() {
        return numBatches == 0 ? epoch : epoch + (double) batchInEpoch / numBatches;
    }

    private void zeroAllGrads() {
        optimizer.zeroGrad();
        for (Parameter p : unmanaged) {
            p.zeroGrad();
        }
    }

    // ---- evaluation ----------------------------------------------------------------------

    /**
     * Evaluation metrics over {@code batches}: the eval function's, or {@code eval_loss} (the
     * loss function's value averaged over examples) when there is none. Runs in eval mode with
     * gradient recording off and puts the model back in train mode afterwards. Does not
     * notify listeners.
     */
    public Map<String, Double> evaluate(Iterable<Batch> batches) {
        if (batches == null) {
            throw new IllegalArgumentException("evaluate needs batches");
        }
        boolean wasTraining = model.isTraining();
        model.eval();
        Map<String, Double> m;
        try (NoGrad ignored = NoGrad.enter()) {
            m = evalFn != null ? evalFn.evaluate(model, batches) : meanLoss(batches);
        } finally {
            if (wasTraining) {
                model.train();
            }
        }
        if (m == null) {
            throw new IllegalStateException("the evaluation function returned null");
        }
        Map<String, Double> out = new LinkedHashMap<>();
        m.forEach((k, v) -> {
            if (k == null || v == null) {
                throw new IllegalStateException("the evaluation function returned a null metric name or value: " + m);
            }
            out.put(k, v);
        });
        return out;
    }

    private Map<String, Double> meanLoss(Iterable<Batch> batches) {
        double sum = 0.0;
        long n = 0;
        for (Batch b : batches) {
            Tensor loss = lossFn.loss(model, b);
            if (loss == null || loss.length() != 1) {
                throw new IllegalStateException("the loss function must return a one-element tensor");
            }
            sum += (double) loss.item() * b.size();
            n += b.size();
        }
        if (n == 0) {
            throw new IllegalArgumentException("the evaluation loader yielded no batch");
        }
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("eval_loss", sum / n);
        return m;
    }

    private void evaluateAndNotify(DataLoader<?> eval) {
        Map<String, Double> m = evaluate(eval);
        lastEvalStep = globalStep;
        lastEvalMetrics = Collections.unmodifiableMap(m);
        EvalEvent e = new EvalEvent(globalStep, fractionalEpoch(), m);
        for (TrainingListener l : listeners) {
            l.onEvaluate(this, e);
        }
    }

    // ---- checkpoints ---------------------------------------------------------------------

    /**
     * Writes {@code <outputDir>/checkpoint-<globalStep>} atomically (replacing a folder of the
     * same name), then deletes the oldest checkpoints beyond {@code keepCheckpoints}.
     */
    @Override
    public Path saveCheckpoint() {
        Path out = config.outputDir();
        if (out == null) {
            throw new IllegalStateException("TrainingConfig.outputDir is not set; cannot save a checkpoint");
        }
        Path dir = out.resolve(TrainerCheckpoint.folderName(globalStep));
        Map<String, INDArray> values = new LinkedHashMap<>();
        params.forEach((k, p) -> values.put(k, p.value()));
        OptimizerState os = optimizer.state();
        TrainerCheckpoint.write(dir, state(os), values, os.tensors());
        lastCheckpoint = dir;
        lastCheckpointStep = globalStep;
        LOG.info("saved checkpoint {}", dir);
        TrainerCheckpoint.prune(out, dir, config.keepCheckpoints());
        return dir;
    }

    /** The trainer's position and bookkeeping now, with the optimizer's step counts from {@code os}. */
    private TrainerState state(OptimizerState os) {
        List<Long> rngStates = new ArrayList<>();
        for (Rng rng : rngs) {
            rngStates.add(rng.state());
        }
        Map<String, JsonNode> listenerStates = new LinkedHashMap<>();
        for (TrainingListener l : listeners) {
            if (l.stateKey() != null) {
                JsonNode s = l.saveState();
                if (s != null) {
                    listenerStates.put(l.stateKey(), s);
                }
            }
        }
        Map<String, long[]> shapes = new LinkedHashMap<>();
        params.forEach((k, p) -> shapes.put(k, p.shape()));
        return new TrainerState(globalStep, epoch, batchInEpoch, totalSteps, numBatches,
                currentTrain == null ? null : TrainerState.LoaderState.of(currentTrain), rngStates,
                os.type(), optimizer.learningRate(), os.steps(),
                new TrainerState.LogWindow(windowLossSum, windowSteps, windowTokens),
                lastEvalStep, lastEvalMetrics, listenerStates, shapes, config.toJson());
    }

    /**
     * Restores a checkpoint written by {@link #saveCheckpoint()}: parameter values (in place),
     * optimizer state, step/epoch/batch position, RNG states, listener state. The next
     * {@link #fit} continues exactly where the checkpointed run was. Everything is validated
     * before anything changes; a mismatch (parameter names or shapes, optimizer type, number
     * of RNGs) is an {@link IllegalArgumentException} naming it.
     */
    public Trainer resume(Path dir) {
        if (dir == null || !Files.isDirectory(dir)) {
            throw new IllegalArgumentException("checkpoint folder " + dir + " does not exist");
        }
        TrainerState st = TrainerCheckpoint.readTrainerState(dir);
        Map<String, INDArray> values = TrainerCheckpoint.readParameters(dir);
        List<String> missing = new ArrayList<>();
        for (String k : params.keySet()) {
            if (!values.containsKey(k)) {
                missing.add(k);
            }
        }
        List<String> unexpected = new ArrayList<>();
        for (String k : values.keySet()) {
            if (!params.containsKey(k)) {
                unexpected.add(k);
            }
        }
        if (!missing.isEmpty() || !unexpected.isEmpty()) {
            throw new IllegalArgumentException("checkpoint " + dir.resolve(TrainerCheckpoint.PARAMETERS_FILE)
                    + " does not match the trainer's parameters: missing " + missing + ", unexpected " + unexpected);
        }
        for (Map.Entry<String, Parameter> e : params.entrySet()) {
            INDArray v = values.get(e.getKey());
            if (!Arrays.equals(v.shape(), e.getValue().shape())) {
                throw new IllegalArgumentException("checkpoint parameter '" + e.getKey() + "' has shape "
                        + Arrays.toString(v.shape()) + ", the model's has " + Arrays.toString(e.getValue().shape()));
            }
        }
        if (st.rngStates().size() != rngs.size()) {
            throw new IllegalArgumentException("checkpoint " + dir + " holds " + st.rngStates().size()
                    + " RNG state(s), the trainer was given " + rngs.size() + " RNG(s)");
        }
        OptimizerState os = new OptimizerState(st.optimizerType(), st.optimizerSteps(),
                TrainerCheckpoint.readOptimizerTensors(dir));
        List<String> configDiffs = st.configDifferences(config);
        if (!configDiffs.isEmpty()) {
            LOG.warn("resuming from {} with a different config; the run will not reproduce the original exactly: {}",
                    dir, configDiffs);
        }

        // validated; now change state (the optimizer validates its state before swapping it in)
        optimizer.loadState(os);
        if (!Double.isNaN(st.learningRate())) {
            optimizer.setLearningRate(st.learningRate());
        }
        for (Map.Entry<String, Parameter> e : params.entrySet()) {
            INDArray target = e.getValue().value();
            INDArray v = values.get(e.getKey());
            target.assign(v.dataType() == target.dataType() ? v : v.castTo(target.dataType()));
            e.getValue().zeroGrad();
        }
        for (int i = 0; i < rngs.size(); i++) {
            rngs.get(i).setState(st.rngStates().get(i));
        }
        globalStep = st.globalStep();
        epoch = st.epoch();
        batchInEpoch = st.batchInEpoch();
        windowLossSum = st.logWindow().lossSum();
        windowSteps = st.logWindow().steps();
        windowTokens = st.logWindow().tokens();
        lastEvalStep = st.lastEvalStep();
        lastEvalMetrics = st.lastEvalMetrics();
        for (TrainingListener l : listeners) {
            if (l.stateKey() == null) {
                continue;
            }
            JsonNode s = st.listenerStates().get(l.stateKey());
            if (s == null) {
                LOG.warn("checkpoint {} has no state for listener '{}'; it starts fresh", dir, l.stateKey());
            } else {
                l.restoreState(s);
            }
        }
        resumedLoader = st.loader();
        resumed = true;
        lastCheckpoint = dir;
        lastCheckpointStep = globalStep;
        LOG.info("resumed from {} at step {} (epoch {}, batch {})", dir, globalStep, epoch, batchInEpoch);
        return this;
    }

    private void checkResumedLoader(DataLoader<?> train) {
        if (resumedLoader == null) {
            return;
        }
        if (batchInEpoch > numBatches) {
            throw new IllegalArgumentException("the checkpoint stopped at batch " + batchInEpoch + " of its epoch but the training loader has only "
                    + numBatches + " batches per epoch");
        }
        List<String> diffs = resumedLoader.differences(train);
        if (!diffs.isEmpty()) {
            LOG.warn("the training loader differs from the checkpointed one; data order will not match: {}", diffs);
        }
    }

    /** Settings for a {@link Trainer}. */
    public static final class Builder {
        private final Module model;
        private final Map<String, Parameter> trainable;
        private final LossFunction loss;
        private final TrainingConfig config;
        private EvalFunction eval;
        private Optimizer optimizer;
        private final List<Rng> rngs = new ArrayList<>();
        private final List<TrainingListener> listeners = new ArrayList<>();
        private boolean progress = true;
        private PrintStream progressStream;

        private Builder(Module model, Map<String, Parameter> trainable, LossFunction loss, TrainingConfig config) {
            this.model = model;
            this.trainable = trainable;
            this.loss = loss;
            this.config = config;
        }

        /** Metrics for evaluation; without one, evaluation reports {@code eval_loss} from the loss function. */
        public Builder evalFunction(EvalFunction eval) {
            this.eval = eval;
            return this;
        }

        /** Uses this optimizer (over exactly the trainer's parameters) instead of the config's. */
        public Builder optimizer(Optimizer optimizer) {
            this.optimizer = optimizer;
            return this;
        }

        /** An RNG whose state checkpoints save and restore (the model's dropout generator, …). */
        public Builder rng(Rng rng) {
            if (rng == null) {
                throw new IllegalArgumentException("rng must not be null");
            }
            rngs.add(rng);
            return this;
        }

        public Builder rngs(List<Rng> rngs) {
            for (Rng r : rngs) {
                rng(r);
            }
            return this;
        }

        public Builder listener(TrainingListener listener) {
            if (listener == null) {
                throw new IllegalArgumentException("listener must not be null");
            }
            listeners.add(listener);
            return this;
        }

        /** Prints the progress line to {@code out} instead of logging it through SLF4J. */
        public Builder progressStream(PrintStream out) {
            this.progressStream = out;
            return this;
        }

        /** Turns the built-in progress line on (default) or off. */
        public Builder progress(boolean on) {
            this.progress = on;
            return this;
        }

        public Trainer build() {
            return new Trainer(this);
        }
    }
}
