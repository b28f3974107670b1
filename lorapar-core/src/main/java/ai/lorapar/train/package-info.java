/**
 * Masked training: {@link ai.lorapar.train.MaskedAdamW} (AdamW whose updates are gated per element by
 * the stage masks, frozen elements bit-identical; a step with a non-finite trainable gradient is refused
 * with {@link ai.lorapar.train.NonFiniteGradientException}), learning-rate schedules
 * ({@link ai.lorapar.train.LearningRateSchedule}) and gradient housekeeping ({@link ai.lorapar.train.Gradients}).
 */
package ai.lorapar.train;
