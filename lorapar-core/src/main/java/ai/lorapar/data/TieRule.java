package ai.lorapar.data;

/**
 * What the {@link ai.lorapar.split.Splitter} does when System 1 and System 2 get the same number of votes (an even number of
 * teachers, or abstentions that leave a draw). Examples on which every teacher abstained are always dropped.
 */
public enum TieRule {
    /** Label a tie System 2 (default): a question some teachers judge multi-step is treated as multi-step. */
    PREFER_SYSTEM_2,
    /** Label a tie System 1. */
    PREFER_SYSTEM_1,
    /** Leave a tied example unlabelled; it is counted as dropped and not written to the labelled file. */
    DROP
}
