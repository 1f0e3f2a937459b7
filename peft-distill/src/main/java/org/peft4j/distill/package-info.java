/**
 * Knowledge distillation: logit KD, hidden-state KD and few-shot distillation.
 */
package org.peft4j.distill;
