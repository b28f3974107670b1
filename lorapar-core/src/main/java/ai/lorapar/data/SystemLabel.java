package ai.lorapar.data;

/** The two classes of the LoRA-PAR data split. */
public enum SystemLabel {
    /** Fast: immediate recall, direct reading comprehension, one-step inference. */
    SYSTEM_1("System1"),
    /** Slow: multi-step logical reasoning, chaining information. */
    SYSTEM_2("System2");

    private final String text;

    SystemLabel(String text) {
        this.text = text;
    }

    /** The spelling used in the role-play prompt and in labelled JSONL: {@code System1} / {@code System2}. */
    public String text() {
        return text;
    }

    /** Inverse of {@link #text()}; also accepts the enum constant name. */
    public static SystemLabel fromText(String text) {
        for (SystemLabel label : values()) {
            if (label.text.equalsIgnoreCase(text) || label.name().equalsIgnoreCase(text)) {
                return label;
            }
        }
        throw new IllegalArgumentException("not a system label: \"" + text + "\" (expected System1 or System2)");
    }
}
