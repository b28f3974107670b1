/**
 * Training data: the {@link ai.lorapar.data.Example} value type, a JSONL reader for GSM8K, Alpaca and Dolly
 * records whose errors name the file and line, atomic file writes (temporary file, then move), and the
 * labelled-example types of the System 1 / System 2 split ({@link ai.lorapar.data.SystemLabel},
 * {@link ai.lorapar.data.LabelledDataset}, {@link ai.lorapar.data.LabelledJsonl}), which the labelling
 * stage ({@code ai.lorapar.split}) produces and every later stage reads.
 */
package ai.lorapar.data;
