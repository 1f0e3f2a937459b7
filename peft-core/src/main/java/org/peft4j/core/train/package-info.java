/**
 * Training: the one {@link org.peft4j.core.train.Trainer} every PEFT method uses, its
 * optimizers, schedules, data loading, listeners, checkpoints and exact resume.
 *
 * <pre>{@code
 * TrainingConfig cfg = TrainingConfig.builder()
 *         .epochs(3).batchSize(16).gradientAccumulationSteps(2)
 *         .learningRate(2e-4).weightDecay(0.01).warmupRatio(0.06).schedule(ScheduleType.LINEAR)
 *         .maxGradNorm(1.0).evalInterval(100).logInterval(10).seed(42)
 *         .outputDir(Path.of("runs/lora")).checkpointInterval(200)
 *         .earlyStopping("accuracy", 3, true)
 *         .build();
 * DataLoader<Example> train = DataLoader.forTraining(Dataset.of(trainExamples), PaddingCollator.dynamic(padId), cfg);
 * DataLoader<Example> eval = DataLoader.forEvaluation(Dataset.of(evalExamples), PaddingCollator.dynamic(padId), 64);
 * Trainer trainer = Trainer.builder(model, model.namedTrainableParameters(),
 *                 (m, b) -> Ops.crossEntropy(head.logits(b), b.labels(), Ops.Reduction.MEAN), cfg)
 *         .evalFunction(Metrics.classification((m, b) -> head.logits(b)))
 *         .rng(model.dropoutRng())          // every RNG the forward pass draws from
 *         .build();
 * TrainerCheckpoint.latest(cfg.outputDir()).ifPresent(trainer::resume);
 * TrainResult result = trainer.fit(train, eval);
 * }</pre>
 *
 * <ul>
 *   <li>{@link org.peft4j.core.train.Optimizer}: {@link org.peft4j.core.train.AdamW} (PyTorch
 *       {@code AdamW}: decoupled decay, bias correction, ε outside the root) and
 *       {@link org.peft4j.core.train.Sgd} (PyTorch {@code SGD} with momentum, dampening,
 *       Nesterov). Only trainable parameters are accepted; rank ≤ 1 tensors get no weight decay
 *       unless a named override says otherwise. State is saved as
 *       {@link org.peft4j.core.train.OptimizerState}.</li>
 *   <li>{@link org.peft4j.core.train.LrSchedule}: constant, linear and cosine with linear
 *       warm-up, as Hugging Face's {@code get_*_schedule_with_warmup}.</li>
 *   <li>{@link org.peft4j.core.train.GradClipping}: global L2 norm clipping.</li>
 *   <li>{@link org.peft4j.core.train.Dataset}, {@link org.peft4j.core.train.DataLoader}
 *       (shuffle order is a function of seed and epoch), {@link org.peft4j.core.train.Collator},
 *       {@link org.peft4j.core.train.PaddingCollator} → {@link org.peft4j.core.train.Batch}
 *       ({@code inputIds [B, T]} INT64, {@code attentionMask [B, T]} FLOAT, optional
 *       {@code tokenTypeIds}, labels {@code [B]} or {@code [B, T]} with -100, extra arrays).</li>
 *   <li>{@link org.peft4j.core.train.TrainingListener}s: {@link org.peft4j.core.train.ProgressListener},
 *       {@link org.peft4j.core.train.MetricsLogger} ({@code metrics.jsonl}),
 *       {@link org.peft4j.core.train.EarlyStopping}; checkpoints in
 *       {@link org.peft4j.core.train.TrainerCheckpoint} layout, the trainer's position and
 *       bookkeeping in them as a {@link org.peft4j.core.train.TrainerState}.</li>
 *   <li>Losses and metrics: {@link org.peft4j.core.train.Metrics} (classification accuracy and
 *       cross-entropy), {@link org.peft4j.core.train.CausalLm} (next-token loss over shifted
 *       labels, loss per token and perplexity, examples from texts).</li>
 *   <li>{@link org.peft4j.core.train.TrainingDivergedException}: a NaN/Inf loss or gradient norm
 *       stops training before any parameter changes.</li>
 * </ul>
 */
package org.peft4j.core.train;
