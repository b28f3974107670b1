/**
 * The LoRA-PAR Sample Splitter: labels training examples System 1 (fast, one-step) or System 2 (multi-step) by
 * letting several {@link ai.lorapar.split.Teacher teachers} role-play the target model and voting.
 *
 * <p>Entry point: {@link ai.lorapar.split.Splitter#vote(ai.lorapar.split.Teacher...)}. Teachers:
 * {@link ai.lorapar.split.OpenAiChatTeacher} (any OpenAI-compatible server) and
 * {@link ai.lorapar.split.HeuristicTeacher} (a rule-based offline fallback). Replies are parsed by
 * {@link ai.lorapar.split.ReplyParser}, stored in a {@link ai.lorapar.split.LabelCache}, tallied into
 * {@link ai.lorapar.data.VoteResult}s and written by {@link ai.lorapar.data.LabelledJsonl} (the labelled
 * types live in {@code ai.lorapar.data}, so later stages do not depend on this package).
 */
package ai.lorapar.split;
