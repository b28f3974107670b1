package ai.lorapar.partition;

/** The three subregions of LoRA elements that partitioning distinguishes. */
public enum Region {
    /** Kept at θ by System-1 importance only. */
    SYSTEM1_ONLY,
    /** Kept at θ by System-2 importance only. */
    SYSTEM2_ONLY,
    /** Kept at θ by both systems. */
    SHARED
}
