package ai.lorapar.data;

/** The JSONL record shapes {@link JsonlExamples} understands. */
public enum ExampleFormat {
    /** GSM8K style: {@code {"question": ..., "answer": ...}}. */
    QUESTION_ANSWER,
    /** Alpaca style: {@code {"instruction": ..., "input": ..., "output": ...}}; {@code input} may be empty or absent. */
    INSTRUCTION_INPUT_OUTPUT,
    /** Dolly style: {@code {"instruction": ..., "context": ..., "response": ...}}; {@code context} may be empty or absent. */
    INSTRUCTION_CONTEXT_RESPONSE
}
