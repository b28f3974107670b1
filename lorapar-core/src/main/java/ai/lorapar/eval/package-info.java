/**
 * Evaluation: GSM8K exact match on the final number ({@link ai.lorapar.eval.Gsm8kEvaluator},
 * {@link ai.lorapar.eval.AnswerExtraction}, {@link ai.lorapar.eval.EvalReport}) and multiple-choice accuracy
 * by option log-likelihood ({@link ai.lorapar.eval.MultipleChoiceScorer}, MMLU-style).
 */
package ai.lorapar.eval;
