/**
 * Knowledge distillation: a frozen teacher's soft targets (and, when asked, hidden states and
 * attention distributions) train a student, a full model or any PEFT model.
 *
 * <ul>
 *   <li>{@link org.peft4j.distill.DistillationLoss}: Hinton KD {@code T²·KL(p_t^T ‖ p_s^T)} mixed
 *       with the hard-label cross-entropy by {@code alpha} (rows labelled
 *       {@link org.peft4j.core.train.Batch#IGNORE_INDEX} get the KD term alone); hidden-state MSE or
 *       {@code 1 − cos} between chosen {@code hidden_states} through a trainable projection where
 *       the widths differ; MiniLM's attention KL on the last layers. Built from core's
 *       differentiable ops ({@code klDivergence}, {@code crossEntropy}, {@code mse},
 *       {@code cosineSimilarity}, {@code indexSelect}, {@code log}); no new op.</li>
 *   <li>{@link org.peft4j.distill.TeacherCache}: the teacher in eval mode under
 *       {@link org.peft4j.core.tensor.NoGrad}, once per dataset, kept in a safetensors file with a
 *       fingerprint of the teacher and the token ids.</li>
 *   <li>{@link org.peft4j.distill.DistillCollator}: the shared {@code PaddingCollator} plus the
 *       cached teacher outputs as {@link org.peft4j.core.train.Batch#extra} arrays.</li>
 *   <li>{@link org.peft4j.distill.Distiller}: the shared {@link org.peft4j.core.train.Trainer} with
 *       the distillation loss; teacher and student run only through
 *       {@link org.peft4j.core.model.HeadModel#forward(org.peft4j.core.model.BackboneInputs)}.</li>
 *   <li>{@link org.peft4j.distill.FewShot}: k class-balanced gold labels, the rest of the pool soft-labelled.</li>
 * </ul>
 * The CLI's {@code peft4j distill CONFIG.yaml} (examples module) runs the IMDB experiment.
 */
package org.peft4j.distill;
